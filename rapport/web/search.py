"""Global search over people, organisations, deals and activities, scoped by visibility.

Names and identities are matched by prefix on indexed folded keys, so results come back in
milliseconds at a million people. Activities are matched by the words of their subject through
a word index (SQLite FTS5 / PostgreSQL GIN; see activities.selectors.activities_matching)."""

from dataclasses import dataclass, field
from typing import Any

from rapport.accounts.models import User
from rapport.activities.models import ActivityKind
from rapport.activities.selectors import activities_matching, matching_ids_sql
from rapport.core import reads
from rapport.core.access import can_see
from rapport.core.search import prefix_sql
from rapport.people.selectors import PersonFilters, PersonRef, person_rows

KIND_LABELS = dict(ActivityKind.choices)


@dataclass
class Result:
    title: str
    url: str
    subtitle: str = ""


@dataclass
class Group:
    key: str
    label: str
    results: list[Result] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "results": [r.__dict__ for r in self.results]}


def global_search(user: User, q: str, limit: int = 8) -> list[Group]:
    q = q.strip()
    groups = [
        Group("people", "People"),
        Group("organisations", "Organisations"),
        Group("deals", "Deals"),
        Group("activities", "Activities"),
    ]
    if len(q) < 2:
        return groups
    people = person_rows(user=user, filters=PersonFilters(q=q), limit=limit, with_total=False).items
    groups[0].results = [
        Result(
            p.full_name,
            f"/people/{p.pk}/",
            " · ".join(
                x
                for x in [
                    p.title,
                    p.organisation.name if p.organisation else "",
                    p.primary_email,
                ]
                if x
            ),
        )
        for p in people
    ]
    groups[1].results = _organisations(user, q, limit)
    groups[2].results = _deals(user, q, limit)
    groups[3].results = _activities(user, q, limit)
    return groups


# The other groups in plain SQL (core.reads), like the people: the search box asks on every
# keystroke, and four ORM queries cost more CPU than the index lookups behind them. Each
# selects what organisation_list / deal_list / activities_matching select (tests compare).


def _organisations(user: User, q: str, limit: int) -> list[Result]:
    text = q.strip().lower()
    vis, params = reads.visibility_sql(user, "o")
    if "." in text and " " not in text:  # a domain
        cond, cond_params = prefix_sql("dm.domain", text)
        ids = [r[0] for r in reads.fetch(
            f"SELECT dm.organisation_id FROM people_organisationdomain dm WHERE {cond} LIMIT 500", cond_params  # noqa: S608
        )]  # fmt: skip
        if not ids:
            return []
        match, match_params = f"o.id IN ({reads.marks(ids)})", ids
    else:
        match, match_params = prefix_sql("o.name_key", q)
    rows = reads.fetch(
        f"SELECT o.id, o.name, o.industry FROM people_organisation o WHERE {vis} "  # noqa: S608
        f"AND o.merged_into_id IS NULL AND {match} ORDER BY o.name_key, o.id LIMIT %s",
        [*params, *match_params, limit],
    )
    return [Result(name, f"/organisations/{pk}/", industry) for pk, name, industry in rows]


def _deals(user: User, q: str, limit: int) -> list[Result]:
    vis, params = reads.visibility_sql(user, "d")
    match, match_params = prefix_sql("d.name_key", q)
    rows = reads.fetch(
        "SELECT d.id, d.name, s.name, d.amount, d.currency FROM sales_deal d "  # noqa: S608
        f"INNER JOIN sales_stage s ON s.id = d.stage_id WHERE {vis} AND {match} "
        "ORDER BY d.name_key, d.id LIMIT %s",
        [*params, *match_params, limit],
    )
    return [
        Result(name, f"/deals/{pk}/", f"{stage} · {reads.decimal(amount) or 0:,.0f} {currency}")
        for pk, name, stage, amount, currency in rows
    ]


def _activities(user: User, q: str, limit: int) -> list[Result]:
    found = matching_ids_sql(q)
    if found is None:  # a database without the word index: the ORM's bounded scan
        acts = activities_matching(user, q).select_related("person").order_by("-occurred_at", "-id")[:limit]
        return [
            _activity_result(
                a.pk,
                a.subject,
                a.kind,
                a.occurred_at,
                a.person if a.person and can_see(user, a.person) else None,
            )
            for a in acts
        ]
    ids_sql, ids_params = found
    vis, params = reads.visibility_sql(user, "a")
    rows = reads.fetch(
        "SELECT a.id, a.subject, a.kind, a.occurred_at, p.id, p.first_name, p.last_name, p.owner_id, "  # noqa: S608
        "p.team_id, p.visibility FROM activities_activity a LEFT OUTER JOIN people_person p ON p.id = a.person_id "
        f"WHERE {vis} AND a.id IN ({ids_sql}) ORDER BY a.occurred_at DESC, a.id DESC LIMIT %s",
        [*params, *ids_params, limit],
    )
    results = []
    for pk, subject, kind, occurred_at, person_id, first, last, owner_id, team_id, visibility in rows:
        # An activity shared with everyone can be about a private person: their name stays hidden.
        person = (
            PersonRef(person_id, first, last)
            if person_id is not None and can_see(user, reads.Access(owner_id, team_id, visibility))
            else None
        )
        results.append(_activity_result(pk, subject, kind, reads.aware(occurred_at), person))
    return results


def _activity_result(pk: int, subject: str, kind: str, occurred_at: Any, person: object | None) -> Result:
    label = KIND_LABELS.get(kind, kind)
    return Result(
        subject or label, f"/activities/{pk}/", f"{label} · {person or ''} · {occurred_at:%Y-%m-%d}"
    )
