"""Row handling per kind: validate and normalise a row, find its duplicate, create or merge.

Duplicates are found among the records the importing user can see, and among rows earlier
in the same file:
- exact: the same email, phone (E.164) or social handle;
- fuzzy (people): a similar name at the same organisation. Candidates are blocked by
  organisation + first letter of the last name and each block is capped, so matching costs
  about the same per row at ten rows or a million.
What happens to a duplicate is the job's choice: skip it, merge it into the existing record
(fill empty fields, add identities and tags), or create it anyway marked for review. A
duplicate of a record the user may see but not change is skipped, never written."""

import datetime as dt
import re
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from django.db.models import Q
from django.utils import timezone
from rapidfuzz import fuzz, process

from rapport.accounts.models import Role, User
from rapport.audit.models import AuditEntry
from rapport.core.access import visibility_q, visible
from rapport.core.text import fold
from rapport.imports.engine import (
    MAX_CELL_CHARS,
    PREVIEW_ROWS,
    CellError,
    IdAllocator,
    Inserter,
    RunContext,
)
from rapport.imports.mapping import CUSTOM, split_full_name
from rapport.people.actions import CUSTOM_KEY_MAX, CUSTOM_MAX_KEYS, CUSTOM_VALUE_MAX
from rapport.people.identities import (
    FREE_MAIL_DOMAINS,
    IdentityError,
    normalise_email,
    normalise_handle,
    normalise_website,
)
from rapport.people.models import (
    Address,
    Employment,
    Identity,
    Organisation,
    OrganisationDomain,
    Person,
    Source,
    Tag,
)
from rapport.sales.models import Deal, DealStatus, Pipeline, Stage

FUZZY_CUTOFF = 88
BLOCK_CAP = 200
MAX_TAGS = 20
IDENTITY_TARGETS = {"email", "phone", "x", "linkedin", "mastodon", "bluesky", "website"}
ADDRESS_TARGETS = {"street", "city", "region", "postcode", "country"}
_TAG_SPLIT = re.compile(r"[,;]")


def _fold(value: str) -> str:
    """rapport.core.text.fold, with a fast path for plain ASCII (most names and companies)."""
    if value.isascii():
        return " ".join(value.lower().split())
    return fold(value)


_MAX_LEN: dict[tuple[Any, str], int] = {}


def _max_len(model: Any, name: str) -> int:
    key = (model, name)
    if key not in _MAX_LEN:
        _MAX_LEN[key] = model._meta.get_field(name).max_length
    return _MAX_LEN[key]


def _split_tags(value: str) -> list[str]:
    return list(dict.fromkeys(t.strip()[:60] for t in _TAG_SPLIT.split(value) if t.strip()))[:MAX_TAGS]


class _PhoneNormaliser:
    """phonenumbers is the slowest step per row; the same number often appears many times."""

    def __init__(self) -> None:
        from django.conf import settings

        self.region = getattr(settings, "RAPPORT_DEFAULT_REGION", None) or None
        self.cache: dict[str, str] = {}

    def __call__(self, raw: str) -> str:
        hit = self.cache.get(raw)
        if hit is not None:
            return hit
        if len(raw) > 40:
            raise IdentityError("A phone number is at most 40 characters.")
        try:
            number = phonenumbers.parse(raw, self.region)
        except phonenumbers.NumberParseException:
            raise IdentityError(
                f"“{raw[:40]}” is not a phone number (use the international form, e.g. +44 20 7946 0958)."
            )
        if not phonenumbers.is_valid_number(number):
            raise IdentityError(f"“{raw[:40]}” is not a valid phone number.")
        value = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if len(self.cache) < 200_000:
            self.cache[raw] = value
        return value


class BaseImporter:
    model: Any = None
    label_targets: tuple[str, ...] = ()

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.dry = ctx.dry
        self.user: User = ctx.user
        job = ctx.job
        self.visibility = job.visibility
        self.team_id = job.team_id
        self.mode = job.on_duplicate
        self.now = timezone.now()
        self.cols = [(i, t) for i, t in enumerate(ctx.mapping) if t]
        self.headers = ctx.headers
        self.privileged = self.user.is_admin or self.user.role == Role.MANAGER
        self.team_ids = set(self.user.team_ids())
        # Records this user may see but not change: a duplicate of one is skipped.
        self.read_only_ids: set[int] = set()
        self.row_of_new: dict[int, int] = {}

    # -- hooks ----------------------------------------------------------------------------
    def load_indexes(self) -> None:
        raise NotImplementedError

    def handle_row(self, row_number: int, cells: list[str], errors: list[CellError]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        if self.dry:
            return
        s = self.ctx.stats
        AuditEntry.objects.create(
            model="imports.importjob",
            object_id=self.ctx.job.pk,
            actor=self.user,
            action=AuditEntry.Action.IMPORT,
            changes={"created": s.created, "merged": s.merged, "skipped": s.skipped, "failed": s.failed},
            summary=(
                f"Imported {self.ctx.job.kind} from {self.ctx.job.original_name or 'a file'}: "
                f"{s.created} created, {s.merged} merged, {s.skipped} skipped, {s.failed} failed"
            )[:300],
        )

    # -- shared helpers -------------------------------------------------------------------
    def label_for(self, cells: list[str]) -> str:
        parts = [cells[i].strip() for i, t in self.cols if t in self.label_targets and i < len(cells)]
        return " ".join(p for p in parts if p)[:120]

    def cell_values(self, cells: list[str], errors: list[CellError]) -> list[tuple[str, str, str]]:
        """(target, value, column header) for every mapped, non-empty cell."""
        out = []
        n = len(cells)
        for i, target in self.cols:
            if i >= n:
                continue
            value = cells[i].strip()
            if not value:
                continue
            if len(value) > MAX_CELL_CHARS:
                errors.append(
                    CellError(
                        self.headers[i],
                        value[:50] + "…",
                        f"The cell has {len(value):,} characters; at most {MAX_CELL_CHARS:,} are accepted.",
                    )
                )
                continue
            out.append((target, value, self.headers[i]))
        return out

    def add_custom(self, custom: dict[str, str], column: str, value: str, errors: list[CellError]) -> None:
        """A custom-field cell, under the same limits as an edit (people.actions.clean_custom)."""
        key = column.strip()
        if len(key) > CUSTOM_KEY_MAX or "\x00" in key:
            errors.append(
                CellError(column[:50], "", f"Custom field names are at most {CUSTOM_KEY_MAX} characters.")
            )
        elif len(value) > CUSTOM_VALUE_MAX or "\x00" in value:
            errors.append(
                CellError(
                    column, value[:50], f"At most {CUSTOM_VALUE_MAX} characters (this has {len(value)})."
                )
            )
        elif key not in custom and len(custom) >= CUSTOM_MAX_KEYS:
            errors.append(CellError(column, "", f"At most {CUSTOM_MAX_KEYS} custom fields per record."))
        else:
            custom[key] = value

    def check_len(self, model: Any, name: str, value: str, column: str, errors: list[CellError]) -> str:
        limit = _max_len(model, name)
        if len(value) > limit:
            errors.append(
                CellError(column, value[:50], f"At most {limit} characters (this has {len(value)}).")
            )
        return value

    def editable(self, owner_id: int, team_id: int | None) -> bool:
        return (
            self.user.is_admin
            or owner_id == self.user.pk
            or (team_id is not None and team_id in self.team_ids)
        )

    def preview(
        self, row_number: int, action: str, label: str, detail: str = "", target: int | None = None
    ) -> None:
        preview = self.ctx.stats.preview
        if len(preview) >= PREVIEW_ROWS:
            return
        item: dict[str, Any] = {
            "row": row_number,
            "action": action,
            "label": label,
            "detail": detail,
            "errors": [],
        }
        if target is not None:
            if target in self.row_of_new:
                item["duplicate_row"] = self.row_of_new[target]
            else:
                item["duplicate_id"] = target
        preview.append(item)

    def remember_new(self, pk: int, row_number: int) -> None:
        if row_number <= PREVIEW_ROWS + 2 or len(self.row_of_new) < 1000:
            self.row_of_new[pk] = row_number


# --- organisations, shared by every kind ---------------------------------------------------


class OrgDirectory:
    """Visible organisations by folded name and by domain; creates the missing ones."""

    def __init__(self, importer: BaseImporter):
        self.imp = importer
        self.by_key: dict[str, int] = {}
        self.by_domain: dict[str, int] = {}
        self.ids: IdAllocator | None = None
        self.inserter = Inserter(Organisation, dry=importer.dry, with_pk=True)
        self.created = 0

    def load(self) -> None:
        user = self.imp.user
        for pk, key in (
            visible(Organisation, user)
            .filter(merged_into__isnull=True)
            .order_by("-id")
            .values_list("id", "name_key")
            .iterator(chunk_size=20000)
        ):
            self.by_key[key] = pk  # ascending wins: the oldest organisation of a name
        for pk, domain in (
            OrganisationDomain.objects.filter(
                visibility_q(user, "organisation__"), organisation__merged_into__isnull=True
            )
            .order_by("-organisation_id")
            .values_list("organisation_id", "domain")
            .iterator(chunk_size=20000)
        ):
            self.by_domain[domain] = pk
        self.ids = IdAllocator(Organisation, self.imp.dry)

    def resolve(self, name: str, key: str | None = None) -> int:
        key = key if key is not None else _fold(name)[:200]
        pk = self.by_key.get(key)
        if pk is None:
            assert self.ids is not None
            pk = self.ids.next()
            self.by_key[key] = pk
            imp = self.imp
            self.inserter.add(
                {
                    "id": pk,
                    "name": name,
                    "name_key": key,
                    "owner_id": imp.user.pk,
                    "team_id": imp.team_id,
                    "visibility": imp.visibility,
                    "source": Source.IMPORT,
                }
            )
            self.created += 1
        return pk


# --- people ----------------------------------------------------------------------------


class PersonRecord:
    __slots__ = (
        "pk",
        "row",
        "first",
        "last",
        "title",
        "org_name",
        "org_id",
        "bio",
        "language",
        "custom",
        "idents",
        "tags",
        "address",
        "needs_review",
        "fk",
        "lk",
        "ok",
    )

    def __init__(self, row: int):
        self.pk = 0
        self.row = row
        self.first = self.last = self.title = self.org_name = self.bio = self.language = ""
        self.org_id: int | None = None
        self.custom: dict[str, str] = {}
        self.idents: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self.address: dict[str, str] | None = None
        self.needs_review = False
        self.fk = self.lk = self.ok = ""

    def refresh_keys(self) -> None:
        self.fk, self.lk, self.ok = _fold(self.first), _fold(self.last), _fold(self.org_name)[:200]

    @property
    def name_key(self) -> str:
        return f"{self.fk} {self.lk}".strip()


PERSON_FILL = ("first_name", "last_name", "title", "bio", "language")
_REC_ATTR = {
    "first_name": "first",
    "last_name": "last",
    "title": "title",
    "bio": "bio",
    "language": "language",
}


class PeopleImporter(BaseImporter):
    model = Person
    label_targets = ("first_name", "last_name", "full_name", "email")

    def __init__(self, ctx: RunContext):
        super().__init__(ctx)
        dry = self.dry
        self.orgs = OrgDirectory(self)
        self.ident_index: dict[str, int] = {}
        self.name_index: dict[str, int] = {}
        self.blocks: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self.tag_ids: dict[str, int] = {}
        self.phone = _PhoneNormaliser()
        self.people = Inserter(Person, dry=dry, with_pk=True)
        self.identities = Inserter(Identity, dry=dry, with_pk=False)
        self.employments = Inserter(Employment, dry=dry, with_pk=False)
        self.addresses = Inserter(Address, dry=dry, with_pk=False)
        self.tag_links = Inserter(Person.tags.through, dry=dry, with_pk=False)
        self.pending: dict[int, PersonRecord] = {}
        self.merges: dict[int, list[PersonRecord]] = defaultdict(list)
        self.custom_empty = self.people.prep("custom", {})
        self.now_db = self.people.prep("created_at", self.now)
        self.ids: IdAllocator | None = None

    def load_indexes(self) -> None:
        user = self.user
        self.ids = IdAllocator(Person, self.dry)
        self.orgs.load()
        self.tag_ids = {name.lower(): pk for pk, name in Tag.objects.values_list("id", "name")}
        people_q = visibility_q(user, "person__") & Q(person__merged_into__isnull=True)
        index = self.ident_index
        for kind, value, pk in (
            Identity.objects.filter(people_q)
            .order_by("-person_id")
            .values_list("kind", "value", "person_id")
            .iterator(chunk_size=50000)
        ):
            index[f"{'phone' if kind == 'whatsapp' else kind}:{value}"] = pk
        people = visible(Person, user).filter(merged_into__isnull=True)
        for pk, first, last, org_key in (
            people.filter(organisation__isnull=False)
            .order_by("id")
            .values_list("id", "first_name", "last_name", "organisation__name_key")
            .iterator(chunk_size=50000)
        ):
            self._index_name(pk, _fold(first), _fold(last), org_key)
        if not user.is_admin:
            editable = Q(owner_id=user.pk)
            if self.team_ids:
                editable |= Q(team_id__in=self.team_ids)
            self.read_only_ids = set(
                people.exclude(editable).values_list("id", flat=True).iterator(chunk_size=50000)
            )

    def _index_name(self, pk: int, first: str, last: str, org_key: str) -> None:
        if not org_key or not (first or last):
            return
        name = f"{first} {last}".strip()
        self.name_index.setdefault(f"{org_key}|{name}", pk)
        block = self.blocks[f"{org_key}|{(last or first)[:1]}"]
        block.append((name, pk))

    # -- one row ----------------------------------------------------------------------------
    def handle_row(self, row_number: int, cells: list[str], errors: list[CellError]) -> None:
        rec = PersonRecord(row_number)
        for target, value, column in self.cell_values(cells, errors):
            try:
                if target == "email":
                    rec.idents.append(("email", normalise_email(value)))
                elif target == "phone":
                    rec.idents.append(("phone", self.phone(value)))
                elif target == "first_name":
                    rec.first = self.check_len(Person, "first_name", value, column, errors)
                elif target == "last_name":
                    rec.last = self.check_len(Person, "last_name", value, column, errors)
                elif target == "full_name":
                    first, last = split_full_name(value)
                    rec.first = rec.first or self.check_len(Person, "first_name", first, column, errors)
                    rec.last = rec.last or self.check_len(Person, "last_name", last, column, errors)
                elif target == "organisation":
                    rec.org_name = self.check_len(Organisation, "name", value, column, errors)
                elif target == "title":
                    rec.title = self.check_len(Person, "title", value, column, errors)
                elif target == "tags":
                    rec.tags.extend(_split_tags(value))
                elif target == "website":
                    rec.idents.append(("website", normalise_website(value)))
                elif target in IDENTITY_TARGETS:
                    rec.idents.append((target, normalise_handle(target, value)))
                elif target in ADDRESS_TARGETS:
                    if rec.address is None:
                        rec.address = {}
                    rec.address[target] = self.check_len(Address, target, value, column, errors)
                elif target == "bio":
                    rec.bio = self.check_len(Person, "bio", value, column, errors)
                elif target == "language":
                    rec.language = self.check_len(Person, "language", value, column, errors)
                elif target == CUSTOM:
                    self.add_custom(rec.custom, column, value, errors)
            except IdentityError as exc:
                errors.append(CellError(column, value[:200], str(exc)))
        if errors:
            return
        if not (rec.first or rec.last or rec.idents):
            errors.append(CellError("", "", "A person needs a name or at least one email, phone or handle."))
            return
        rec.idents = list(dict.fromkeys(rec.idents))
        rec.refresh_keys()
        self.place(rec)

    def place(self, rec: PersonRecord) -> None:
        stats = self.ctx.stats
        label = f"{rec.first} {rec.last}".strip() or (rec.idents[0][1] if rec.idents else "")
        match, how = self.find_duplicate(rec)
        if match is None:
            self.create(rec)
            self.preview(rec.row, "create", label, rec.org_name)
            return
        stats.duplicates += 1
        if self.mode == "create":
            rec.needs_review = True
            self.create(rec)
            self.preview(rec.row, "create", label, f"possible duplicate ({how}); marked for review", match)
        elif self.mode == "merge" and match not in self.read_only_ids:
            self.merge(match, rec)
            stats.merged += 1
            self.preview(rec.row, "merge", label, f"same {how}", match)
        else:
            stats.skipped += 1
            why = f"duplicate ({how})"
            if self.mode == "merge":
                why += " of a record you cannot change"
            self.preview(rec.row, "skip", label, why, match)

    def find_duplicate(self, rec: PersonRecord) -> tuple[int | None, str]:
        index = self.ident_index
        for kind, value in rec.idents:
            pk = index.get(f"{kind}:{value}")
            if pk is not None:
                return pk, kind
        if rec.org_name and (rec.first or rec.last):
            org_key = rec.ok
            name = rec.name_key
            pk = self.name_index.get(f"{org_key}|{name}")
            if pk is not None:
                return pk, "name and organisation"
            last = rec.lk or rec.fk
            block = self.blocks.get(f"{org_key}|{last[:1]}")
            if block:
                candidates = block[-BLOCK_CAP:]
                hit = process.extractOne(
                    name, [c[0] for c in candidates], scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF
                )
                if hit is not None:
                    return candidates[hit[2]][1], "similar name at the same organisation"
        return None, ""

    def create(self, rec: PersonRecord) -> None:
        assert self.ids is not None
        rec.pk = self.ids.next()
        self.remember_new(rec.pk, rec.row)
        self.pending[rec.pk] = rec
        for kind, value in rec.idents:
            self.ident_index.setdefault(f"{kind}:{value}", rec.pk)
        if rec.org_name:
            self._index_name(rec.pk, rec.fk, rec.lk, rec.ok)
        self.ctx.stats.created += 1

    def merge(self, target: int, rec: PersonRecord) -> None:
        for kind, value in rec.idents:
            self.ident_index.setdefault(f"{kind}:{value}", target)
        pending = self.pending.get(target)
        if pending is None:
            self.merges[target].append(rec)
            return
        # The target is a row of this batch, not yet written: merge in memory.
        for attr in ("first", "last", "title", "org_name", "bio", "language"):
            if not getattr(pending, attr) and getattr(rec, attr):
                setattr(pending, attr, getattr(rec, attr))
        merge_custom(pending.custom, rec.custom)
        pending.idents = list(dict.fromkeys(pending.idents + rec.idents))
        pending.tags = list(dict.fromkeys(pending.tags + rec.tags))
        if pending.address is None and rec.address:
            pending.address = rec.address
        pending.refresh_keys()

    # -- writing ---------------------------------------------------------------------------
    def _tag_id(self, name: str) -> int:
        key = name.lower()
        pk = self.tag_ids.get(key)
        if pk is None:
            pk = -len(self.tag_ids) - 1 if self.dry else Tag.objects.create(name=name).pk
            self.tag_ids[key] = pk
        return pk

    def _org_for(self, rec: PersonRecord) -> int | None:
        if rec.org_name:
            return self.orgs.resolve(rec.org_name, rec.ok)
        for kind, value in rec.idents:
            if kind == "email":
                domain = value.rpartition("@")[2]
                if domain not in FREE_MAIL_DOMAINS and domain in self.orgs.by_domain:
                    return self.orgs.by_domain[domain]
        return None

    def flush(self) -> None:
        for rec in self.pending.values():
            self._write_new(rec)
        self.pending = {}
        if self.merges and not self.dry:
            self._write_merges()
        self.merges = defaultdict(list)
        for inserter in (
            self.orgs.inserter,
            self.people,
            self.identities,
            self.employments,
            self.addresses,
            self.tag_links,
        ):
            inserter.flush()

    def _write_new(self, rec: PersonRecord) -> None:
        org_id = self._org_for(rec)
        if self.dry:
            return
        first_key, last_key = rec.fk, rec.lk
        pk = rec.pk
        self.people.add(
            {
                "id": pk,
                "first_name": rec.first,
                "last_name": rec.last,
                "sort_key": f"{last_key} {first_key}".strip()[:201],
                "name_key": f"{first_key} {last_key}".strip()[:201],
                "title": rec.title,
                "organisation_id": org_id,
                "bio": rec.bio,
                "language": rec.language,
                "needs_review": rec.needs_review,
                "custom": self.people.prep("custom", rec.custom) if rec.custom else self.custom_empty,
                "source": Source.IMPORT,
                "owner_id": self.user.pk,
                "team_id": self.team_id,
                "visibility": self.visibility,
                "created_at": self.now_db,
                "updated_at": self.now_db,
            }
        )
        seen_kinds: set[str] = set()
        for kind, value in rec.idents:
            self.identities.add(
                {
                    "person_id": pk,
                    "kind": kind,
                    "value": value,
                    "is_primary": kind not in seen_kinds,
                    "created_at": self.now_db,
                }
            )
            seen_kinds.add(kind)
        if org_id is not None:
            self.employments.add(
                {"person_id": pk, "organisation_id": org_id, "title": rec.title, "is_current": True}
            )
        if rec.address:
            self.addresses.add({"person_id": pk, **rec.address})
        for name in rec.tags:
            self.tag_links.add({"person_id": pk, "tag_id": self._tag_id(name)})

    def _write_merges(self) -> None:
        """Fill empty fields of records written before this batch; add identities and tags."""
        targets = Person.objects.in_bulk(list(self.merges))
        have_address = set(Address.objects.filter(person_id__in=targets).values_list("person_id", flat=True))
        changed, new_idents, links, employments, addresses = [], [], [], [], []
        for pk, recs in self.merges.items():
            person = targets.get(pk)
            if person is None:
                continue
            dirty = False
            for rec in recs:
                for name in PERSON_FILL:
                    value = getattr(rec, _REC_ATTR[name])
                    if value and not getattr(person, name):
                        setattr(person, name, value)
                        dirty = True
                if rec.org_name and person.organisation_id is None:
                    person.organisation_id = self.orgs.resolve(rec.org_name)
                    employments.append(
                        Employment(person_id=pk, organisation_id=person.organisation_id, title=person.title)
                    )
                    dirty = True
                dirty = merge_custom(person.custom, rec.custom) or dirty
                new_idents += [Identity(person_id=pk, kind=k, value=v) for k, v in rec.idents]
                links += [Person.tags.through(person_id=pk, tag_id=self._tag_id(t)) for t in rec.tags]
                if rec.address and pk not in have_address:
                    addresses.append(Address(person_id=pk, **rec.address))
                    have_address.add(pk)
            if dirty:
                person.refresh_keys()
                person.version += 1
                person.updated_at = self.now
                changed.append(person)
        self.orgs.inserter.flush()  # merged people may point at organisations created just now
        fields = [
            "first_name",
            "last_name",
            "sort_key",
            "name_key",
            "title",
            "bio",
            "language",
            "organisation",
            "custom",
            "version",
            "updated_at",
        ]
        Person.objects.bulk_update(changed, fields, batch_size=500)
        Identity.objects.bulk_create(new_idents, ignore_conflicts=True, batch_size=1000)
        Person.tags.through.objects.bulk_create(links, ignore_conflicts=True, batch_size=1000)
        Employment.objects.bulk_create(employments, batch_size=1000)
        Address.objects.bulk_create(addresses, batch_size=1000)


# --- organisations --------------------------------------------------------------------------


class OrgRecord:
    __slots__ = ("pk", "row", "values", "domains", "tags", "address", "custom")

    def __init__(self, row: int):
        self.pk = 0
        self.row = row
        self.values: dict[str, Any] = {}
        self.domains: list[str] = []
        self.tags: list[str] = []
        self.address: dict[str, str] | None = None
        self.custom: dict[str, str] = {}


ORG_FILL = ("website", "phone", "industry", "employees", "description")


class OrganisationImporter(BaseImporter):
    model = Organisation
    label_targets = ("name",)

    def __init__(self, ctx: RunContext):
        super().__init__(ctx)
        dry = self.dry
        self.orgs = OrgDirectory(self)
        self.domains = Inserter(OrganisationDomain, dry=dry, with_pk=False)
        self.addresses = Inserter(Address, dry=dry, with_pk=False)
        self.tag_links = Inserter(Organisation.tags.through, dry=dry, with_pk=False)
        self.tag_ids: dict[str, int] = {}
        self.pending: dict[int, OrgRecord] = {}
        self.merges: dict[int, list[OrgRecord]] = defaultdict(list)
        self.now_db = self.orgs.inserter.prep("created_at", self.now)

    def load_indexes(self) -> None:
        self.orgs.load()
        self.tag_ids = {name.lower(): pk for pk, name in Tag.objects.values_list("id", "name")}
        if not self.user.is_admin:
            editable = Q(owner_id=self.user.pk)
            if self.team_ids:
                editable |= Q(team_id__in=self.team_ids)
            self.read_only_ids = set(
                visible(Organisation, self.user)
                .exclude(editable)
                .values_list("id", flat=True)
                .iterator(chunk_size=50000)
            )

    def handle_row(self, row_number: int, cells: list[str], errors: list[CellError]) -> None:
        rec = OrgRecord(row_number)
        for target, value, column in self.cell_values(cells, errors):
            if target in ("name", "phone", "industry", "description"):
                rec.values[target] = self.check_len(Organisation, target, value, column, errors)
            elif target == "website":
                try:
                    rec.values["website"] = normalise_website(value)
                except IdentityError as exc:
                    errors.append(CellError(column, value[:200], str(exc)))
                    continue
                host = rec.values["website"].split("://", 1)[1].split("/", 1)[0].removeprefix("www.")
                rec.domains.append(host)
            elif target == "domain":
                domain = value.lower().removeprefix("@").removeprefix("www.")
                if "." not in domain or " " in domain or len(domain) > 253:
                    errors.append(
                        CellError(column, value[:200], f"“{value[:60]}” is not a domain like example.com.")
                    )
                else:
                    rec.domains.append(domain)
            elif target == "employees":
                digits = value.replace(",", "").replace(".", "").replace(" ", "")
                if not digits.isdigit() or int(digits) > 10_000_000:
                    errors.append(CellError(column, value[:200], "Employees must be a whole number."))
                else:
                    rec.values["employees"] = int(digits)
            elif target == "tags":
                rec.tags.extend(_split_tags(value))
            elif target in ADDRESS_TARGETS:
                if rec.address is None:
                    rec.address = {}
                rec.address[target] = self.check_len(Address, target, value, column, errors)
            elif target == CUSTOM:
                self.add_custom(rec.custom, column, value, errors)
        if errors:
            return
        if not rec.values.get("name"):
            errors.append(CellError("", "", "An organisation needs a name."))
            return
        rec.domains = list(dict.fromkeys(rec.domains))
        self.place(rec)

    def place(self, rec: OrgRecord) -> None:
        stats = self.ctx.stats
        name = rec.values["name"]
        key = _fold(name)[:200]
        match, how = self.orgs.by_key.get(key), "name"
        if match is None:
            for domain in rec.domains:
                if domain in self.orgs.by_domain:
                    match, how = self.orgs.by_domain[domain], "domain"
                    break
        if match is not None:
            stats.duplicates += 1
            if self.mode == "merge" and match not in self.read_only_ids:
                stats.merged += 1
                for domain in rec.domains:
                    self.orgs.by_domain.setdefault(domain, match)
                pending = self.pending.get(match)
                if pending is not None:
                    for k, v in rec.values.items():
                        pending.values.setdefault(k, v)
                    pending.domains = list(dict.fromkeys(pending.domains + rec.domains))
                    pending.tags = list(dict.fromkeys(pending.tags + rec.tags))
                    merge_custom(pending.custom, rec.custom)
                    pending.address = pending.address or rec.address
                else:
                    self.merges[match].append(rec)
                self.preview(rec.row, "merge", name, f"same {how}", match)
                return
            if self.mode != "create":
                stats.skipped += 1
                self.preview(rec.row, "skip", name, f"duplicate ({how})", match)
                return
        assert self.orgs.ids is not None
        rec.pk = self.orgs.ids.next()
        self.remember_new(rec.pk, rec.row)
        self.orgs.by_key.setdefault(key, rec.pk)
        for domain in rec.domains:
            self.orgs.by_domain.setdefault(domain, rec.pk)
        self.pending[rec.pk] = rec
        stats.created += 1
        self.preview(rec.row, "create", name, "possible duplicate; created anyway" if match else "", match)

    def _tag_id(self, name: str) -> int:
        key = name.lower()
        pk = self.tag_ids.get(key)
        if pk is None:
            pk = -len(self.tag_ids) - 1 if self.dry else Tag.objects.create(name=name).pk
            self.tag_ids[key] = pk
        return pk

    def flush(self) -> None:
        ins = self.orgs.inserter
        for rec in self.pending.values():
            name = rec.values["name"]
            ins.add(
                {
                    "id": rec.pk,
                    "name": name,
                    "name_key": _fold(name)[:200],
                    **{k: v for k, v in rec.values.items() if k != "name"},
                    "custom": ins.prep("custom", rec.custom),
                    "source": Source.IMPORT,
                    "owner_id": self.user.pk,
                    "team_id": self.team_id,
                    "visibility": self.visibility,
                    "created_at": self.now_db,
                    "updated_at": self.now_db,
                }
            )
            for domain in rec.domains:
                self.domains.add({"organisation_id": rec.pk, "domain": domain})
            if rec.address:
                self.addresses.add({"organisation_id": rec.pk, **rec.address})
            for tag in rec.tags:
                self.tag_links.add({"organisation_id": rec.pk, "tag_id": self._tag_id(tag)})
        self.pending = {}
        for inserter in (ins, self.domains, self.addresses, self.tag_links):
            inserter.flush()
        if self.merges and not self.dry:
            self._write_merges()
        self.merges = defaultdict(list)

    def _write_merges(self) -> None:
        targets = Organisation.objects.in_bulk(list(self.merges))
        have_address = set(
            Address.objects.filter(organisation_id__in=targets).values_list("organisation_id", flat=True)
        )
        changed, domains, links, addresses = [], [], [], []
        for pk, recs in self.merges.items():
            org = targets.get(pk)
            if org is None:
                continue
            existing_domains = set(org.domains.values_list("domain", flat=True))
            dirty = False
            for rec in recs:
                for name in ORG_FILL:
                    if rec.values.get(name) and not getattr(org, name):
                        setattr(org, name, rec.values[name])
                        dirty = True
                dirty = merge_custom(org.custom, rec.custom) or dirty
                for d in rec.domains:
                    if d not in existing_domains:
                        existing_domains.add(d)
                        domains.append(OrganisationDomain(organisation_id=pk, domain=d))
                links += [
                    Organisation.tags.through(organisation_id=pk, tag_id=self._tag_id(t)) for t in rec.tags
                ]
                if rec.address and pk not in have_address:
                    addresses.append(Address(organisation_id=pk, **rec.address))
                    have_address.add(pk)
            if dirty:
                org.version += 1
                org.updated_at = self.now
                changed.append(org)
        Organisation.objects.bulk_update(
            changed, [*ORG_FILL, "custom", "version", "updated_at"], batch_size=500
        )
        OrganisationDomain.objects.bulk_create(domains, ignore_conflicts=True)
        Organisation.tags.through.objects.bulk_create(links, ignore_conflicts=True)
        Address.objects.bulk_create(addresses)


# --- deals ----------------------------------------------------------------------------------

_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y/%m/%d", "%d-%m-%Y", "%Y-%m-%d %H:%M:%S")


def parse_date(value: str) -> dt.date:
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()  # noqa: DTZ007 - a calendar date, no time zone
        except ValueError:
            continue
    raise ValueError(f"“{value[:40]}” is not a date; use 2025-03-31 or 31.03.2025 or 31/03/2025.")


def parse_amount(value: str) -> Decimal:
    text = value.replace(" ", "").replace("\u00a0", "").replace("'", "")
    for symbol in ("€", "$", "£", "EUR", "USD", "GBP", "CHF"):
        text = text.replace(symbol, "")
    if "," in text and "." in text:
        text = (
            text.replace(",", "")
            if text.rfind(".") > text.rfind(",")
            else text.replace(".", "").replace(",", ".")
        )
    elif "," in text:
        head, _, tail = text.rpartition(",")
        text = f"{head.replace(',', '')}.{tail}" if len(tail) in (1, 2) else text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"“{value[:40]}” is not an amount; use a number like 12500.00.")
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        raise ValueError("The amount must be between 0 and 999,999,999,999.")
    return amount.quantize(Decimal("0.01"))


class DealImporter(BaseImporter):
    model = Deal
    label_targets = ("name",)

    def __init__(self, ctx: RunContext):
        super().__init__(ctx)
        dry = self.dry
        self.orgs = OrgDirectory(self)
        self.deals = Inserter(Deal, dry=dry, with_pk=True)
        self.ids: IdAllocator | None = None
        self.keys: dict[str, int] = {}
        self.now_db = self.deals.prep("created_at", self.now)
        self.stages: dict[str, Stage] = {}
        self.first_stage: Stage | None = None
        self.pipeline: Pipeline | None = None
        self.owners: dict[str, int | None] = {}
        self.pending: dict[int, dict[str, Any]] = {}
        self.merges: dict[int, list[dict[str, Any]]] = defaultdict(list)

    def load_indexes(self) -> None:
        from rapport.sales.actions import DEFAULT_STAGES, pipeline_ensure_default

        self.ids = IdAllocator(Deal, self.dry)
        self.orgs.load()
        if self.dry:
            self.pipeline = (
                Pipeline.objects.filter(is_default=True).first() or Pipeline.objects.order_by("id").first()
            )
        else:
            self.pipeline = pipeline_ensure_default()
        if self.pipeline is not None:
            stages = list(self.pipeline.stages.order_by("position", "id"))
        else:
            stages = [
                Stage(name=n, probability=p, is_won=w, is_lost=lost, position=i)
                for i, (n, p, w, lost) in enumerate(DEFAULT_STAGES)
            ]
        self.stages = {_fold(s.name): s for s in stages}
        self.first_stage = stages[0] if stages else None
        deals = visible(Deal, self.user)
        for pk, name_key, org_key in (
            deals.order_by("-id")
            .values_list("id", "name_key", "organisation__name_key")
            .iterator(chunk_size=50000)
        ):
            self.keys[f"{name_key}|{org_key or ''}"] = pk
        if not self.user.is_admin:
            editable = Q(owner_id=self.user.pk)
            if self.team_ids:
                editable |= Q(team_id__in=self.team_ids)
            self.read_only_ids = set(
                deals.exclude(editable).values_list("id", flat=True).iterator(chunk_size=50000)
            )

    def _owner(self, email: str) -> int | None:
        key = email.strip().lower()
        if key not in self.owners:
            user = User.objects.filter(email__iexact=key, is_active=True).order_by("id").first()
            self.owners[key] = user.pk if user else None
        return self.owners[key]

    def handle_row(self, row_number: int, cells: list[str], errors: list[CellError]) -> None:
        values: dict[str, Any] = {"row": row_number}
        for target, value, column in self.cell_values(cells, errors):
            try:
                if target == "name":
                    values["name"] = self.check_len(Deal, "name", value, column, errors)
                elif target == "amount":
                    values["amount"] = parse_amount(value)
                elif target == "currency":
                    if not re.fullmatch(r"[A-Za-z]{3}", value):
                        raise ValueError("A currency is a three-letter code like EUR or USD.")
                    values["currency"] = value.upper()
                elif target == "stage":
                    stage = self.stages.get(_fold(value))
                    if stage is None:
                        raise ValueError(
                            f"Unknown stage; choose one of {', '.join(s.name for s in self.stages.values())}."
                        )
                    values["stage"] = stage
                elif target == "close_date":
                    values["expected_close"] = parse_date(value)
                elif target == "organisation":
                    values["org_name"] = self.check_len(Organisation, "name", value, column, errors)
                elif target == "owner_email":
                    owner = self._owner(value)
                    if owner is None:
                        raise ValueError(f"No active user has the email “{value[:80]}”.")
                    if owner != self.user.pk and not self.privileged:
                        raise ValueError("Only managers and admins can assign records to someone else.")
                    values["owner_id"] = owner
                elif target == "description":
                    values["description"] = self.check_len(Deal, "description", value, column, errors)
            except ValueError as exc:
                errors.append(CellError(column, value[:200], str(exc)))
        if errors:
            return
        if not values.get("name"):
            errors.append(CellError("", "", "A deal needs a name."))
            return
        if self.first_stage is None:
            errors.append(CellError("", "", "There is no pipeline stage to put the deal in."))
            return
        self.place(values)

    def place(self, values: dict[str, Any]) -> None:
        stats = self.ctx.stats
        name = values["name"]
        key = f"{_fold(name)[:200]}|{_fold(values.get('org_name', ''))[:200]}"
        match = self.keys.get(key)
        row = values["row"]
        if match is not None:
            stats.duplicates += 1
            if self.mode == "merge" and match not in self.read_only_ids:
                stats.merged += 1
                if match in self.pending:
                    for k, v in values.items():
                        self.pending[match].setdefault(k, v)
                else:
                    self.merges[match].append(values)
                self.preview(row, "merge", name, "same name and organisation", match)
                return
            if self.mode != "create":
                stats.skipped += 1
                self.preview(row, "skip", name, "duplicate (same name and organisation)", match)
                return
        assert self.ids is not None
        pk = self.ids.next()
        self.remember_new(pk, row)
        self.keys.setdefault(key, pk)
        self.pending[pk] = values
        stats.created += 1
        self.preview(row, "create", name, values.get("org_name", ""), match)

    def flush(self) -> None:
        ins = self.deals
        for pk, v in self.pending.items():
            org_id = self.orgs.resolve(v["org_name"]) if v.get("org_name") else None
            if self.dry:
                continue
            stage = v.get("stage") or self.first_stage
            assert stage is not None and self.pipeline is not None
            status = DealStatus.WON if stage.is_won else DealStatus.LOST if stage.is_lost else DealStatus.OPEN
            ins.add(
                {
                    "id": pk,
                    "name": v["name"],
                    "name_key": _fold(v["name"])[:200],
                    "pipeline_id": self.pipeline.pk,
                    "stage_id": stage.pk,
                    "status": status,
                    "amount": ins.prep("amount", v.get("amount", Decimal("0"))),
                    "currency": v.get("currency", "EUR"),
                    "expected_close": ins.prep("expected_close", v.get("expected_close")),
                    "closed_at": self.now_db if status != DealStatus.OPEN else None,
                    "organisation_id": org_id,
                    "description": v.get("description", ""),
                    "owner_id": v.get("owner_id", self.user.pk),
                    "team_id": self.team_id,
                    "visibility": self.visibility,
                    "created_at": self.now_db,
                    "updated_at": self.now_db,
                    "stage_changed_at": self.now_db,
                }
            )
        self.pending = {}
        self.orgs.inserter.flush()
        ins.flush()
        if self.merges and not self.dry:
            targets = Deal.objects.in_bulk(list(self.merges))
            changed = []
            for pk, items in self.merges.items():
                deal = targets.get(pk)
                if deal is None:
                    continue
                dirty = False
                for v in items:
                    if v.get("amount") and not deal.amount:
                        deal.amount, dirty = v["amount"], True
                    if v.get("expected_close") and deal.expected_close is None:
                        deal.expected_close, dirty = v["expected_close"], True
                    if v.get("description") and not deal.description:
                        deal.description, dirty = v["description"], True
                if dirty:
                    deal.version += 1
                    deal.updated_at = self.now
                    changed.append(deal)
            Deal.objects.bulk_update(
                changed, ["amount", "expected_close", "description", "version", "updated_at"], batch_size=500
            )
        self.merges = defaultdict(list)


IMPORTERS = {"people": PeopleImporter, "organisations": OrganisationImporter, "deals": DealImporter}


def merge_custom(target: dict[str, Any], extra: dict[str, Any]) -> bool:
    """Fill custom fields the record lacks from a duplicate row (never overwrite), staying
    within the per-record limit; True when something was added."""
    added = False
    for key, value in extra.items():
        if key not in target and len(target) < CUSTOM_MAX_KEYS:
            target[key] = value
            added = True
    return added
