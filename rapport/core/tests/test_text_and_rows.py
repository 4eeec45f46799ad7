"""fold() and the row writer's date adapter: the shortcuts give what the general paths give."""

import datetime as dt
import unicodedata
import zoneinfo

import pytest
from django.utils import timezone

from rapport.core.rows import conn_itself, datetime_adapter
from rapport.core.text import fold


def _fold_general(value: str) -> str:
    # The general path, for every input: decompose, drop combining marks, case-fold.
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


@pytest.mark.parametrize(
    "value",
    [
        "Zoë  Ångström",
        "URGENT: refund NOW!!",
        "  tabs\tand\nnewlines  ",
        "ﬁne ligature",  # NFKD turns it into "fine"
        "Straße",  # casefold: "strasse"
        "مرحبا بك",
        "東京 オフィス",
        "e\u0301clair",  # a combining mark already decomposed
        "①②③ ½",
        "",
        "plain ascii 123",
    ],
)
def test_fold_shortcut_matches_the_general_path(value: str) -> None:
    assert fold(value) == (_fold_general(value) if value else "")


def test_fold_examples() -> None:
    assert fold("Zoë  Ångström") == "zoe angstrom"
    assert fold("Hello   WORLD") == "hello world"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        None,
        dt.datetime(2026, 11, 25, 4, 27, 49, 45401, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 25, 4, 27, 49, tzinfo=dt.UTC),  # no microseconds
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2020, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        dt.datetime(2020, 5, 1, 3, 4, 5, tzinfo=zoneinfo.ZoneInfo("UTC")),
        dt.datetime(2020, 7, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ],
)
def test_datetime_adapter_matches_the_backends(value: dt.datetime | None) -> None:
    conn = conn_itself()
    assert datetime_adapter(conn)(value) == conn.ops.adapt_datetimefield_value(value)


@pytest.mark.django_db
def test_datetime_adapter_on_now() -> None:
    conn = conn_itself()
    now = timezone.now()
    assert datetime_adapter(conn)(now) == conn.ops.adapt_datetimefield_value(now)
