import datetime as dt
from collections import Counter

import phonenumbers
import pytest
from django.core.management import call_command

from rapport.accounts.models import Role, User
from rapport.activities.models import Activity
from rapport.bench.seed import DEMO_PASSWORD, SeedError, ensure_demo_users, is_seeded, seed
from rapport.people.identities import normalise
from rapport.people.models import Identity, Organisation, Person, Relationship, Source
from rapport.sales.models import Deal, Order

TODAY = dt.date(2025, 3, 14)


def _people_fingerprint(qs):
    return [
        (p.first_name, p.last_name, p.title, [i.value for i in p.identities.order_by("kind", "value")])
        for p in qs.order_by("id").prefetch_related("identities")
    ]


@pytest.fixture
def small(db):
    return seed(people=120, orgs=25, deals=40, activities=300, seed=7, users=True, today=TODAY)


def test_counts_match_the_arguments(small):
    assert Person.objects.count() == 120
    assert Organisation.objects.count() == 25
    assert Deal.objects.count() == 40
    assert Activity.objects.count() == 300
    assert small.counts["people"] == 120 and small.counts["activities"] == 300
    assert Person.objects.filter(source=Source.SEED).count() == 120 and is_seeded()


def test_same_seed_gives_the_same_people_and_emails(small):
    first = _people_fingerprint(Person.objects.all())
    seed(people=120, orgs=25, deals=40, activities=300, seed=7, users=True, today=TODAY)
    last_of_first_run = Person.objects.order_by("id").values_list("id", flat=True)[119]
    second = _people_fingerprint(Person.objects.filter(id__gt=last_of_first_run))
    assert second == first
    assert len({e for _f, _l, _t, ids in first for e in ids}) > 120  # not a degenerate data set


def test_another_seed_gives_other_people(small):
    before = _people_fingerprint(Person.objects.all())
    Person.objects.all().delete()
    seed(people=120, orgs=25, deals=40, activities=300, seed=8, users=True, today=TODAY)
    assert _people_fingerprint(Person.objects.all()) != before


def test_phones_are_valid_e164_in_the_four_regions(small):
    phones = list(Identity.objects.filter(kind="phone").values_list("value", flat=True))
    phones += list(Organisation.objects.values_list("phone", flat=True))
    phones += list(Activity.objects.exclude(phone_number="").values_list("phone_number", flat=True))
    assert len(phones) > 50
    for value in phones:
        number = phonenumbers.parse(value)
        assert phonenumbers.is_valid_number(number), value
        assert phonenumbers.region_code_for_number(number) in {"GB", "US", "DE", "FR"}, value
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == value


def test_every_identity_is_already_in_normalised_form_and_emails_are_unique(small):
    for ident in Identity.objects.all():
        assert normalise(ident.kind, ident.value) == ident.value, (ident.kind, ident.value)
    emails = Counter(Identity.objects.filter(kind="email").values_list("value", flat=True))
    assert emails and max(emails.values()) == 1


def test_derived_keys_match_what_the_models_compute(small):
    for person in Person.objects.all():
        stored = (person.sort_key, person.name_key)
        person.refresh_keys()
        assert (person.sort_key, person.name_key) == stored
    for model in (Organisation, Deal):
        for obj in model.objects.all():
            stored = obj.name_key
            obj.refresh_keys()
            assert obj.name_key == stored and stored


def test_people_work_somewhere_and_owners_are_demo_users(small):
    assert Person.objects.filter(organisation__isnull=False).count() > 80
    owners = set(
        User.objects.filter(pk__in=Person.objects.values("owner")).values_list("username", flat=True)
    )
    assert owners <= {"maria", "sam", "mona", "sven", "admin"} and len(owners) >= 3
    assert Person.objects.filter(visibility="everyone").count() > 90
    assert Relationship.objects.exists()


def test_last_activity_is_the_latest_activity_of_the_person(small):
    person = Person.objects.filter(activities__isnull=False).first()
    latest = person.activities.order_by("-occurred_at").first().occurred_at
    assert person.last_activity_at == latest


def test_deals_close_within_six_months_and_some_are_won_or_lost(small):
    open_deals = Deal.objects.filter(status="open")
    assert open_deals.exists()
    for deal in open_deals:
        assert TODAY <= deal.expected_close <= TODAY + dt.timedelta(days=183)
    statuses = set(Deal.objects.values_list("status", flat=True))
    assert {"won", "lost"} & statuses
    assert Order.objects.exists()


def test_demo_users_are_created_once_and_kept(db):
    ensure_demo_users()
    maria = User.objects.get(username="maria")
    assert maria.check_password(DEMO_PASSWORD) and maria.role == Role.SALES
    assert [t.name for t in maria.teams.all()] == ["North"]
    maria.set_password("changed-by-maria-1")
    maria.save()
    ensure_demo_users()
    assert User.objects.filter(username__in=["admin", "maria", "sam", "mona", "sven", "rita"]).count() == 6
    assert User.objects.get(username="maria").check_password("changed-by-maria-1")
    assert User.objects.get(username="admin").is_admin
    assert User.objects.get(username="rita").role == Role.READ_ONLY
    assert User.objects.get(username="sam").teams.get().name == "South"


def test_seed_without_users_needs_someone_to_own_the_records(db):
    with pytest.raises(SeedError, match="--users"):
        seed(people=5, users=False)
    assert not Person.objects.exists()


def test_seed_without_users_uses_existing_writers(alice, reader):
    seed(people=10, orgs=2, deals=2, activities=5, seed=1, today=TODAY)
    assert set(Person.objects.values_list("owner__username", flat=True)) == {"alice"}


def test_seed_command_reports_counts(db, capsys):
    call_command("seed", "--people", "30", "--orgs", "5", "--deals", "6", "--activities", "40", "--users")
    out = capsys.readouterr().out
    assert "Seeded" in out and Person.objects.count() == 30 and Activity.objects.count() == 40
