"""Global search over people, organisations, deals and activities, scoped by visibility.

Names and identities are matched by prefix on indexed folded keys, so results come back in
milliseconds at a million people. Activities are matched by words in the subject among the
most recent RECENT_ACTIVITIES visible ones (a scan bounded by LIMIT along the recency index)."""

from dataclasses import dataclass, field
from typing import Any

from rapport.accounts.models import User
from rapport.activities.models import Activity
from rapport.activities.selectors import activities_visible
from rapport.people.selectors import OrgFilters, PersonFilters, organisation_list, person_list
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


RECENT_ACTIVITIES = 5000


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
    people = person_list(user=user, filters=PersonFilters(q=q), limit=limit, with_total=False).items
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
    # Words anywhere in a subject cannot use an index; look among the most recent activities
    # only (a bounded walk down the recency index) so one keystroke never scans millions.
    recent = activities_visible(user).order_by("-occurred_at", "-id").values("id")[:RECENT_ACTIVITIES]
    acts = (
        Activity.objects.filter(id__in=recent)
        .filter(subject__icontains=q)
        .select_related("person")
        .order_by("-occurred_at", "-id")[:limit]
    )
    groups[3].results = [
        Result(
            a.subject or a.get_kind_display(),
            f"/activities/{a.pk}/",
            f"{a.get_kind_display()} · {a.person or ''} · {a.occurred_at:%Y-%m-%d}",
        )
        for a in acts
    ]
    return groups
