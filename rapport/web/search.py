"""Global search over people, organisations, deals and activities, scoped by visibility.

Names and identities are matched by prefix on indexed folded keys, so results come back in
milliseconds at a million people. Activities are matched by the words of their subject through
a word index (SQLite FTS5 / PostgreSQL GIN; see activities.selectors.activities_matching)."""

from dataclasses import dataclass, field
from typing import Any

from rapport.accounts.models import User
from rapport.activities.selectors import activities_matching
from rapport.people.selectors import OrgFilters, PersonFilters, organisation_list, person_rows
from rapport.sales.selectors import DealFilters, deal_list


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
    orgs = organisation_list(user=user, filters=OrgFilters(q=q), limit=limit, with_total=False).items
    groups[1].results = [Result(o.name, f"/organisations/{o.pk}/", o.industry) for o in orgs]
    deals = deal_list(user=user, filters=DealFilters(q=q, sort="name"), limit=limit, with_total=False).items
    groups[2].results = [
        Result(d.name, f"/deals/{d.pk}/", f"{d.stage.name} · {d.amount:,.0f} {d.currency}") for d in deals
    ]
    acts = activities_matching(user, q).select_related("person").order_by("-occurred_at", "-id")[:limit]
    groups[3].results = [
        Result(
            a.subject or a.get_kind_display(),
            f"/activities/{a.pk}/",
            f"{a.get_kind_display()} · {a.person or ''} · {a.occurred_at:%Y-%m-%d}",
        )
        for a in acts
    ]
    return groups
