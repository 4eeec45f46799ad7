"""Duplicate suggestions: people who are probably the same person.

Two signals:
- the same identity (email, phone, handle) on two people: near-certain, score 100;
- similar names (rapidfuzz token_sort_ratio on folded names ≥ NAME_THRESHOLD) inside the same
  organisation, or the same company email domain for people without an organisation.

Fuzzy comparison only happens inside blocks (one organisation, one email domain; blocks
larger than MAX_BLOCK are cut by last-name prefix), read in index order as a stream, so the
work grows with the number of people rather than its square. Only people the user may see
are suggested. Pairs someone marked "not a duplicate" are remembered in
`Person.custom["not_duplicates"]` (ids of the other person) on both records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.http import Http404
from rapidfuzz import fuzz, process

from rapport.accounts.models import User
from rapport.audit.actions import audit_record
from rapport.audit.models import AuditEntry
from rapport.core.access import can_edit
from rapport.core.errors import ActionError
from rapport.people.identities import FREE_MAIL_DOMAINS, email_domain
from rapport.people.models import Identity, IdentityKind, Person
from rapport.people.selectors import attach_primary_identities, people_visible

NAME_THRESHOLD = 90
MAX_BLOCK = 300
MAX_SHARED = 10  # an identity on more people than this is a shared inbox, not a duplicate
DISMISS_KEY = "not_duplicates"


@dataclass
class DuplicatePair:
    a: Person
    b: Person
    reason: str
    score: int
    kind: str  # "identity" | "name"

    @property
    def key(self) -> tuple[int, int]:
        return pair_key(self.a.pk, self.b.pk)


def pair_key(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def dismissed_ids(person: Person) -> set[int]:
    raw = (person.custom or {}).get(DISMISS_KEY, [])
    out = set()
    for item in raw if isinstance(raw, list) else []:
        try:
            out.add(int(item))
        except (TypeError, ValueError):
            continue
    return out


# --- candidate generation --------------------------------------------------------------------


@dataclass
class _Candidate:
    a: int
    b: int
    reason: str
    score: int
    kind: str


def _shared_identity_candidates(user: User, limit: int) -> Iterator[_Candidate]:
    # Grouped over the (kind, value) index without the visibility join; groups are rare, so
    # checking visibility afterwards for the few ids involved is cheap.
    groups = (
        Identity.objects.values("kind", "value")
        .annotate(n=Count("id"))
        .filter(n__gt=1, n__lte=MAX_SHARED)
        .order_by("kind", "value")
    )
    found = 0
    batch: list[Mapping[str, Any]] = []
    for group in groups.iterator(chunk_size=500):
        batch.append(group)
        if len(batch) >= 200:
            for cand in _identity_batch(user, batch):
                found += 1
                yield cand
            batch = []
            if found >= limit:
                return
    yield from _identity_batch(user, batch)


def _identity_batch(user: User, groups: list[Mapping[str, Any]]) -> Iterator[_Candidate]:
    if not groups:
        return
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    values = {g["value"] for g in groups}
    keys = {(g["kind"], g["value"]) for g in groups}
    rows = Identity.objects.filter(value__in=values).values_list("kind", "value", "person_id")
    for kind, value, person_id in rows:
        if (kind, value) in keys:
            by_key[(kind, value)].append(person_id)
    all_ids = {pid for ids in by_key.values() for pid in ids}
    allowed = set(people_visible(user).filter(pk__in=all_ids).values_list("pk", flat=True))
    for (kind, value), ids in by_key.items():
        ids = sorted(set(ids) & allowed)
        label = IdentityKind(kind).label.lower() if kind in IdentityKind.values else kind
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                yield _Candidate(a, b, f"Same {label}: {value}", 100, "identity")


def _compare_block(rows: list[tuple[int, str]], reason: str) -> Iterator[_Candidate]:
    """rows: (person id, folded "first last"). Yields similar pairs within the block."""
    rows = [(pid, name) for pid, name in rows if len(name.replace(" ", "")) >= 3]
    if len(rows) < 2:
        return
    if len(rows) > MAX_BLOCK:
        # Cut by the first two letters of the last word (rows are "first last" here).
        sub: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for pid, name in rows:
            sub[name.split()[-1][:2]].append((pid, name))
        for part in sub.values():
            if len(part) <= MAX_BLOCK:
                yield from _compare_block(part, reason)
            else:  # pathological (thousands of "Smith"s): compare neighbours only
                part.sort(key=lambda r: r[1])
                for window_start in range(0, len(part), MAX_BLOCK // 2):
                    yield from _compare_block_exact(part[window_start : window_start + MAX_BLOCK], reason)
        return
    yield from _compare_block_exact(rows, reason)


def _compare_block_exact(rows: list[tuple[int, str]], reason: str) -> Iterator[_Candidate]:
    names = [name for _, name in rows]
    matrix = process.cdist(names, names, scorer=fuzz.token_sort_ratio, score_cutoff=NAME_THRESHOLD)
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            score = int(round(matrix[i][j]))
            if score >= NAME_THRESHOLD:
                a, b = rows[i][0], rows[j][0]
                yield _Candidate(*pair_key(a, b), reason, score, "name")


def _same_org_candidates(user: User) -> Iterator[_Candidate]:
    rows = (
        people_visible(user)
        .filter(organisation__isnull=False)
        .order_by("organisation_id", "sort_key", "id")
        .values_list("id", "organisation_id", "name_key", "organisation__name")
    )
    for (_org_id, org_name), block in groupby(rows.iterator(chunk_size=2000), key=lambda r: (r[1], r[3])):
        members = [(r[0], r[2]) for r in block]
        if len(members) > 1:
            yield from _compare_block(members, f"Similar name at {org_name}")


def _same_domain_candidates(user: User, scan_limit: int) -> Iterator[_Candidate]:
    """People without an organisation who write from the same company domain."""
    orgless = people_visible(user).filter(organisation__isnull=True)
    by_domain: dict[str, set[int]] = defaultdict(set)
    emails = Identity.objects.filter(kind=IdentityKind.EMAIL, person__in=orgless.values("pk")).values_list(
        "person_id", "value"
    )
    for person_id, value in emails[:scan_limit].iterator(chunk_size=5000):
        domain = email_domain(value)
        if domain and domain not in FREE_MAIL_DOMAINS:
            by_domain[domain].add(person_id)
    blocks = {d: ids for d, ids in by_domain.items() if len(ids) > 1}
    if not blocks:
        return
    all_ids = {pid for ids in blocks.values() for pid in ids}
    names = dict(Person.objects.filter(pk__in=all_ids).values_list("id", "name_key"))
    for domain, ids in sorted(blocks.items()):
        yield from _compare_block(
            [(pid, names.get(pid, "")) for pid in sorted(ids)], f"Similar name, same email domain {domain}"
        )


# --- assembling pairs -----------------------------------------------------------------------


def _materialise(user: User, candidates: Iterable[_Candidate], limit: int) -> list[DuplicatePair]:
    best: dict[tuple[int, int], _Candidate] = {}
    for cand in candidates:
        key = pair_key(cand.a, cand.b)
        if key not in best or best[key].score < cand.score:
            best[key] = cand
    if not best:
        return []
    ids = {pid for key in best for pid in key}
    people = {p.pk: p for p in people_visible(user).filter(pk__in=ids).select_related("organisation")}
    attach_primary_identities(list(people.values()))
    pairs = []
    for (a, b), cand in best.items():
        pa, pb = people.get(a), people.get(b)
        if pa is None or pb is None or b in dismissed_ids(pa) or a in dismissed_ids(pb):
            continue
        pairs.append(DuplicatePair(a=pa, b=pb, reason=cand.reason, score=cand.score, kind=cand.kind))
    pairs.sort(key=lambda p: (-p.score, p.a.sort_key, p.a.pk, p.b.pk))
    return pairs[:limit]


def find_duplicates(*, user: User, limit: int = 100, scan_limit: int = 500_000) -> list[DuplicatePair]:
    """Suggested duplicate pairs among the people `user` may see, best first."""

    def candidates() -> Iterator[_Candidate]:
        yield from _shared_identity_candidates(user, limit * 2)
        yield from _same_org_candidates(user)
        yield from _same_domain_candidates(user, scan_limit)

    return _materialise(user, candidates(), limit)


def duplicates_for(*, user: User, person: Person, limit: int = 20) -> list[DuplicatePair]:
    """Suggestions for one person (a detail-page question, so index lookups only)."""
    visible = people_visible(user)
    cands: list[_Candidate] = []
    mine = list(person.identities.values_list("kind", "value"))
    for kind, value in mine:
        others = (
            Identity.objects.filter(kind=kind, value=value)
            .exclude(person_id=person.pk)
            .values_list("person_id", flat=True)[:MAX_SHARED]
        )
        label = IdentityKind(kind).label.lower() if kind in IdentityKind.values else kind
        for other in others:
            cands.append(_Candidate(*pair_key(person.pk, other), f"Same {label}: {value}", 100, "identity"))
    rows: list[tuple[int, str]] = []
    reason = ""
    if person.organisation_id:
        rows = list(
            visible.filter(organisation_id=person.organisation_id)
            .exclude(pk=person.pk)
            .order_by("sort_key", "id")
            .values_list("id", "name_key")[:2000]
        )
        reason = f"Similar name at {person.organisation}"
    else:
        domains = {
            email_domain(v)
            for k, v in mine
            if k == IdentityKind.EMAIL and email_domain(v) not in FREE_MAIL_DOMAINS
        }
        ids: set[int] = set()
        for domain in sorted(domains)[:5]:
            ids |= set(
                Identity.objects.filter(kind=IdentityKind.EMAIL, value__endswith="@" + domain)
                .exclude(person_id=person.pk)
                .values_list("person_id", flat=True)[:2000]
            )
        if ids:
            rows = list(visible.filter(pk__in=ids, organisation__isnull=True).values_list("id", "name_key"))
            reason = "Similar name, same email domain"
    if rows and len(person.name_key.replace(" ", "")) >= 3:
        names = [name for _, name in rows]
        for _name, score, idx in process.extract(
            person.name_key, names, scorer=fuzz.token_sort_ratio, score_cutoff=NAME_THRESHOLD, limit=limit
        ):
            cands.append(_Candidate(*pair_key(person.pk, rows[idx][0]), reason, int(round(score)), "name"))
    pairs = _materialise(user, cands, limit)
    for pair in pairs:  # the person asked about always on the left
        if pair.b.pk == person.pk:
            pair.a, pair.b = pair.b, pair.a
    return pairs


# --- "not a duplicate" -----------------------------------------------------------------------


@transaction.atomic
def duplicate_dismiss(*, actor: User, a: Person, b: Person) -> None:
    """Remember that `a` and `b` are different people, on both records. Both must be
    editable by `actor` (else 404, nothing written)."""
    if not actor.can_write:
        raise ActionError("Your role is read-only.")
    if a.pk == b.pk:
        raise ActionError("Choose two different people.")
    # Lock both rows in id order so concurrent dismissals do not lose each other's entries.
    locked = {p.pk: p for p in Person.objects.select_for_update().filter(pk__in=[a.pk, b.pk]).order_by("pk")}
    if len(locked) != 2 or not all(can_edit(actor, p) for p in locked.values()):
        raise Http404("Not found")
    for this, other in ((locked[a.pk], b.pk), (locked[b.pk], a.pk)):
        ids = dismissed_ids(this) | {other}
        custom = dict(this.custom or {})
        custom[DISMISS_KEY] = sorted(ids)
        Person.objects.filter(pk=this.pk).update(custom=custom)
        this.custom = custom
        audit_record(
            actor=actor,
            obj=this,
            action=AuditEntry.Action.UPDATE,
            changes={DISMISS_KEY: [None, other]},
            summary=f"Marked as not a duplicate of #{other}",
        )
