"""The parsed-header cache of the email parser: same answers as the standard modern policy,
bounded memory, crafted headers still handled."""

import datetime as dt
from email import policy
from email.parser import BytesParser
from pathlib import Path

from rapport.channels.connectors.email import inbound

FIXTURES = Path(inbound.__file__).parent / "fixtures"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _read(raw: bytes, pol: object) -> str:
    try:
        return repr(inbound.read_message(BytesParser(policy=pol).parsebytes(raw), received=NOW))  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - the same failure is part of the same answer
        return repr(exc)


def test_every_fixture_reads_the_same_as_with_the_standard_policy():
    fixtures = sorted(p for p in FIXTURES.iterdir() if p.is_file())
    assert fixtures
    for path in fixtures:
        raw = path.read_bytes()
        assert _read(raw, inbound.POLICY) == _read(raw, policy.default), path.name
        # A second read comes from the cache and must not differ either.
        assert _read(raw, inbound.POLICY) == _read(raw, policy.default), path.name


def test_encoded_words_are_decoded_from_the_cache_too():
    raw = b"From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\nSubject: =?utf-8?b?R3LDvMOfZQ==?=\r\n\r\nhi\r\n"
    for _ in range(2):
        parsed = inbound.read(raw, received=NOW)
        assert parsed.sender == ("Jörg", "j@example.com")
        assert parsed.subject == "Grüße"


def test_the_cache_stays_bounded_and_skips_long_values():
    for n in range(inbound._HEADER_CACHE_SIZE + 50):
        inbound.read(f"From: a{n}@example.com\r\nSubject: s{n}\r\n\r\nx\r\n".encode(), received=NOW)
    assert len(inbound._HEADER_CACHE) <= inbound._HEADER_CACHE_SIZE
    long_subject = "x" * (inbound._CACHED_HEADER_LEN + 1)
    inbound.read(f"From: a@example.com\r\nSubject: {long_subject}\r\n\r\nx\r\n".encode(), received=NOW)
    assert not any(value == long_subject for _, value in inbound._HEADER_CACHE)
