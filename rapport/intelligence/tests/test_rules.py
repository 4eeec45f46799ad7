"""The offline analyser: sentiment rules, intents, urgency, and robustness on hostile text."""

import pytest

from rapport.intelligence.analysis import INTENTS, SENTIMENTS, URGENCIES, analyse, analyse_many


def a(text):
    return analyse(text, backend="default")


def test_negation_turns_good_negative():
    assert a("good").sentiment == "positive"
    assert a("not good").sentiment == "negative"
    assert a("The update is not good at all").sentiment == "negative"


def test_negation_does_not_cross_a_clause():
    assert a("No. This is great!").sentiment == "positive"


def test_idioms_negation_would_get_wrong():
    assert a("can't wait for the launch").sentiment == "positive"
    assert a("not bad, not bad at all").sentiment == "positive"


def test_but_clause_weighs_more_than_what_precedes_it():
    assert a("The staff were nice but the product is terrible").sentiment == "negative"
    assert a("Delivery was slow but the product is wonderful").sentiment == "positive"


def test_emoji_and_emoticons_carry_sentiment():
    assert a("😡").sentiment == "negative"
    assert a("😍😍").sentiment == "positive"
    assert a("my parcel :(").sentiment == "negative"
    assert a("got it :)").sentiment == "positive"
    assert a("see you there &lt;3").sentiment == "positive"


def test_caps_elongation_and_exclamation_intensify():
    assert a("GREAT service").score > a("great service").score
    assert a("sooooo goooood").sentiment == "positive"
    assert a("great service!!!").score > a("great service").score


def test_hashtags_are_read_as_words():
    assert a("another delivery day #fail").sentiment == "negative"


def test_customer_service_phrases():
    assert a("Still waiting, no response from anyone").sentiment == "negative"
    assert a("I want a refund, the blender arrived broken").sentiment == "negative"
    assert a("Worst support ever").sentiment == "negative"
    assert a("Thank you so much, it works great").sentiment == "positive"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("I want to cancel my subscription", "churn_intent"),
        ("Please close my account, I'm switching to another provider", "churn_intent"),
        ("Still waiting for my refund, no response after 3 weeks", "complaint"),
        ("The charger arrived broken", "complaint"),
        ("How much does the pro plan cost?", "purchase_intent"),
        ("Do you ship to Norway? I'd like to buy two", "purchase_intent"),
        ("What time do you open on Sunday?", "question"),
        ("Thank you so much, the new app works great!", "praise"),
        ("The meeting is on Tuesday", "other"),
    ],
)
def test_intents_for_typical_service_lines(text, intent):
    assert a(text).intent == intent


def test_weak_churn_cue_in_a_happy_message_is_not_churn():
    assert a("Love it! Can I switch to the annual plan?").intent != "churn_intent"
    assert a("Terrible app, switching to a competitor").intent == "churn_intent"


def test_urgency():
    assert a("My account was hacked, please help ASAP").urgency == "high"
    assert a("Cancel my subscription now").urgency == "high"
    assert a("Thanks, lovely service").urgency == "low"
    assert a("When does the shop open?").urgency == "normal"


HOSTILE = [
    "",
    "   \n\t ",
    "🙂",
    "😂😂😂🔥",
    "💩",
    "!!!???",
    "Das ist super, merci beaucoup, 谢谢, спасибо, شكرا",
    "x" * 10_000,
    ("terrible " * 1500) + "great",
    "\x00\x01\x02 null bytes \x7f",
    "\ud800 lone surrogate",
    "@user https://example.com/?a=<script>alert(1)</script> #tag",
    ":) :( :/ <3 </3 ^_^ -_-",
    "NOT GOOD!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    "n't not never no",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_odd_texts_never_crash_and_stay_in_range(text):
    r = a(text)
    assert r.sentiment in SENTIMENTS
    assert r.intent in INTENTS
    assert r.urgency in URGENCIES
    assert -1.0 <= r.score <= 1.0
    for c in (r.sentiment_confidence, r.intent_confidence, r.urgency_confidence):
        assert 0.0 <= c <= 1.0


def test_empty_and_none_are_neutral():
    assert a("").sentiment == "neutral"
    assert analyse_many([None], backend="default")[0].sentiment == "neutral"


def test_long_text_keeps_its_ending():
    # the head and tail of a long text are read, so a closing verdict still counts
    text = "the " * 3000 + "this is the worst, terrible, awful service"
    assert a(text).sentiment == "negative"


def test_analyse_many_matches_analyse():
    texts = ["not good", "great!", "what?", ""]
    assert analyse_many(texts, backend="default") == [a(t) for t in texts]


def test_unknown_backend_is_a_clear_error():
    from rapport.intelligence.analysis import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="Unknown backend"):
        analyse("hi", backend="nonsense")
