import pytest

from rapport.listening.query import (
    And,
    Lang,
    Not,
    Or,
    Phrase,
    QuerySyntaxError,
    Term,
    compile_query,
    parse,
    positive_terms,
)


def test_and_binds_tighter_than_or():
    assert parse("a OR b AND c") == Or((Term("a"), And((Term("b"), Term("c")))))


def test_adjacent_terms_are_an_implicit_and():
    assert parse("acme outage") == And((Term("acme"), Term("outage")))


def test_not_binds_tightest_and_minus_is_not():
    assert parse("acme NOT test") == And((Term("acme"), Not(Term("test"))))
    assert parse("acme -test") == parse("acme NOT test")


def test_parentheses_group():
    assert parse("(a OR b) c") == And((Or((Term("a"), Term("b"))), Term("c")))


def test_phrases_hashtags_handles_and_language():
    ast = parse('"Is Down" #AcmeCloud @Acme lang:EN')
    assert ast == And((Phrase(("is", "down")), Term("#acmecloud"), Term("@acme"), Lang("en")))


def test_lowercase_operators_are_words():
    assert parse("rock and roll") == And((Term("rock"), Term("and"), Term("roll")))


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("acme AND (outage OR down", "Unbalanced parenthesis", 10),
        ("acme AND outage) OR down", "Unbalanced parenthesis", 16),
        ('acme "is down', "Unterminated quote", 6),
        ("acme OR", "OR needs a term after it", 6),
        ("OR acme", "OR needs a term before it", 1),
        ("acme AND NOT", "NOT needs a term after it", 10),
        ("acme ()", "Empty parentheses", 6),
        ("", "The query is empty", 1),
        ("NOT acme", "The query only excludes; add a term to look for", 1),
        ("acme lang:", "lang: needs a language code such as lang:en", 6),
    ],
)
def test_syntax_errors_point_at_the_column(text, message, column):
    with pytest.raises(QuerySyntaxError) as info:
        parse(text)
    assert info.value.message == message
    assert info.value.column == column
    assert str(info.value) == f"{message} at column {column}"


def test_matching_is_case_insensitive_on_whole_words():
    q = compile_query("acme")
    assert q.matches("ACME is great")
    assert q.matches("love #Acme and @acme")
    assert q.matches("Acme's support")
    assert q.matches("visit acme.com")
    assert not q.matches("acmeville is a town")


def test_hashtag_term_matches_only_the_hashtag():
    q = compile_query("#acme")
    assert q.matches("so #ACME today")
    assert not q.matches("so acme today")


def test_phrase_needs_words_in_order():
    q = compile_query('"is down"')
    assert q.matches("Acme is   down again")
    assert q.matches("is-down")
    assert not q.matches("down is")
    assert not q.matches("this downtime")


def test_boolean_query_with_language_filter():
    q = compile_query('acme AND (outage OR "is down") NOT test lang:en')
    assert q.matches("Acme is down!", "en")
    assert q.matches("acme outage", "en-GB")
    assert not q.matches("Acme is down!", "fr")
    assert not q.matches("acme outage test", "en")
    assert not q.matches("outage elsewhere", "en")


def test_prefix_term():
    q = compile_query("refund*")
    assert q.matches("I want a refunded order")
    assert not q.matches("fund")


def test_positive_terms_skip_negations_and_language():
    assert positive_terms(parse('acme "is down" NOT test lang:en #acme')) == ["acme", '"is down"', "#acme"]
