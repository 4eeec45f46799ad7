"""A batch stores what the same messages processed one at a time would store: the people it
creates for unknown senders in bulk, the "fewest open" assignments it counts in memory and
the tags its rules add are checked against the one-payload path."""

import json

import pytest

from rapport.audit.models import AuditEntry
from rapport.channels.actions import payload_store
from rapport.channels.models import RawPayload
from rapport.channels.testing import message_event, webhook_channel
from rapport.conversations.ingest import process_batch, process_payload
from rapport.conversations.models import AssignMode, Conversation, RoutingRule, Status
from rapport.people.actions import organisation_create
from rapport.people.models import Employment, Identity, Person, Source, Tag

pytestmark = pytest.mark.django_db


def _deliver(channel, ext, **kw):
    body = json.dumps(message_event(ext, **kw)).encode()
    return payload_store(channel=channel, body=body, headers={}, delivery_id=f"evt-{ext}")[0]


def _run(mode):
    if mode == "batch":
        result = process_batch()
        assert result.finished == result.fetched
    else:
        for pk in RawPayload.objects.order_by("id").values_list("pk", flat=True):
            process_payload(pk)


@pytest.mark.parametrize("mode", ["batch", "one by one"])
def test_unknown_senders_become_the_same_people_either_way(mode, north, bob):
    org = organisation_create(actor=bob, name="Acme", domains=["acme.test"])
    channel = webhook_channel(north)
    _deliver(channel, "u1", value="Ann@Acme.test")
    _deliver(channel, "u2", value="ann@acme.test", text="Again")  # the same sender: one person
    _deliver(channel, "u3", value="zed@example.net")
    _run(mode)
    people = {p.identities.get().value: p for p in Person.objects.filter(source=Source.INBOX)}
    assert set(people) == {"ann@acme.test", "zed@example.net"}
    ann = people["ann@acme.test"]
    assert (ann.first_name, ann.last_name, ann.name_key) == ("Jane", "Doe", "jane doe")
    assert ann.needs_review and ann.team == north and ann.visibility == "team"
    assert ann.owner.username == "rapport-bot"
    assert ann.organisation == org and Employment.objects.filter(person=ann, organisation=org).exists()
    assert Identity.objects.get(person=ann).is_primary
    assert people["zed@example.net"].organisation is None
    for person in people.values():
        assert (
            AuditEntry.objects.filter(
                model="people.person", object_id=person.pk, action=AuditEntry.Action.CREATE
            ).count()
            == 1
        )
    # Both messages of the same sender are in one conversation, assigned to the org's owner.
    conv = Conversation.objects.get(person=ann)
    assert conv.messages.count() == 2 and conv.assignee == bob


def _fewest_open_setup(north, alice, carol):
    RoutingRule.objects.create(name="Desk", assign_mode=AssignMode.FEWEST_OPEN, assign_team=north)
    channel = webhook_channel(north)
    # alice already holds two open conversations, carol one (and a closed one, not counted).
    for user, status in [
        (alice, Status.OPEN),
        (alice, Status.WAITING),
        (carol, Status.OPEN),
        (carol, Status.CLOSED),
    ]:
        Conversation.objects.create(subject="old", assignee=user, status=status, team=north)
    for i in range(6):
        _deliver(channel, f"f{i}", value=f"c{i}@example.net")
    return channel


@pytest.mark.parametrize("mode", ["batch", "one by one"])
def test_fewest_open_assigns_the_same_way_in_a_batch(mode, north, alice, carol):
    _fewest_open_setup(north, alice, carol)
    _run(mode)
    new = Conversation.objects.exclude(subject="old").order_by("id")
    assert new.count() == 6
    order = [c.assignee.username for c in new]
    # carol (1 open) first, then they alternate from two each; ties go to the lower id.
    expected_first = "carol"
    assert order[0] == expected_first
    open_counts = {
        u.username: Conversation.objects.filter(assignee=u, status__in=["new", "open", "waiting"]).count()
        for u in (alice, carol)
    }
    assert abs(open_counts["alice"] - open_counts["carol"]) <= 1 and sum(open_counts.values()) == 9


def test_fewest_open_batch_and_one_by_one_agree(north, alice, carol):
    _fewest_open_setup(north, alice, carol)
    _run("batch")
    batch_order = [c.assignee_id for c in Conversation.objects.exclude(subject="old").order_by("id")]
    Conversation.objects.exclude(subject="old").delete()
    RawPayload.objects.update(status="received")
    _run("one by one")
    single_order = [c.assignee_id for c in Conversation.objects.exclude(subject="old").order_by("id")]
    assert batch_order == single_order


def test_rule_tags_are_added_once_and_existing_tags_reused(north):
    RoutingRule.objects.create(name="Tagger", add_tags=["urgent", "VIP desk"], stop=False)
    channel = webhook_channel(north)
    existing = Tag.objects.create(name="Urgent")
    _deliver(channel, "t1", value="t@example.net")
    _deliver(channel, "t2", value="t@example.net", text="More")  # same conversation, same rule
    _deliver(channel, "t3", value="other@example.net")
    process_batch()
    assert Tag.objects.filter(name__iexact="urgent").count() == 1
    for conv in Conversation.objects.all():
        names = sorted(conv.tags.values_list("name", flat=True))
        assert names == ["Urgent", "VIP desk"]
        assert existing in conv.tags.all()
    # A later batch for a conversation that already has the tags adds nothing.
    _deliver(channel, "t4", value="t@example.net", text="Third")
    process_batch()
    conv = Conversation.objects.get(person__identities__value="t@example.net")
    assert conv.tags.count() == 2 and conv.messages.count() == 3


def test_the_prefetch_reads_conversations_and_people_as_the_orm_does(north, alice):
    """The batch's lookups are plain SQL (compiling the ORM's IN lists and converting every
    datetime cost more than reading the rows at ~600 senders a batch): what they build must
    be what the ORM would give, value for value and type for type."""
    import datetime as dt

    from rapport.conversations import ingest

    person = Person.objects.create(first_name="V", last_name="Ip", owner=alice, is_vip=True)
    Identity.objects.create(person=person, kind="email", value="vip@example.org")
    merged = Person.objects.create(first_name="Old", last_name="One", owner=alice, merged_into=person)
    Identity.objects.create(person=merged, kind="email", value="old@example.org")
    when = dt.datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC)
    full = Conversation.objects.create(
        subject="full",
        person=person,
        assignee=alice,
        team=north,
        sentiment_score=-0.25,
        sla_first_response_due=when,
        first_response_at=when.replace(microsecond=0),  # stored without a fraction
        last_inbound_at=when,
    )
    empty = Conversation.objects.create(subject="empty")
    names = [f.attname for f in Conversation._meta.concrete_fields]
    for got in ingest._conversations([full.pk, empty.pk]):
        expected = Conversation.objects.get(pk=got.pk)
        for name in names:
            mine, theirs = getattr(got, name), getattr(expected, name)
            assert (mine, type(mine)) == (theirs, type(theirs)), name
            if isinstance(mine, dt.datetime):
                assert mine.utcoffset() == theirs.utcoffset() == dt.timedelta(0), name
    batch_people = dict(ingest._identity_owners("email", ["vip@example.org", "old@example.org"]))
    assert batch_people == {"vip@example.org": person.pk}  # a merged-away person is not a sender
    channel = webhook_channel(north)
    _deliver(channel, "v1", value="vip@example.org")
    batch = ingest.Batch([], dt.datetime.now(dt.UTC))
    loaded = batch._persons({person.pk})[person.pk]
    stored = Person.objects.get(pk=person.pk)
    for name in ingest._PERSON_ONLY:
        mine, theirs = getattr(loaded, name), getattr(stored, name)
        assert (mine, type(mine)) == (theirs, type(theirs)), name
