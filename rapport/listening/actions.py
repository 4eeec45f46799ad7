"""Writes for listening: queries, alert rules, mention triage and corrections."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from rapport.accounts.models import Role, User
from rapport.audit.actions import audit_record
from rapport.audit.models import AuditEntry
from rapport.core.actions import require_write
from rapport.core.errors import ActionError, ConflictError, PermissionError_
from rapport.core.models import Visibility
from rapport.listening import rollups
from rapport.listening.models import (
    MENTION_KINDS,
    AlertRule,
    ListeningQuery,
    ListeningSource,
    Mention,
    MentionState,
    QueryKind,
    RuleKind,
    Sentiment,
    SourceKind,
    VelocityMetric,
)
from rapport.listening.query import QuerySyntaxError, parse


def _access_fields(actor: User, data: dict[str, Any], record: Any) -> None:
    """Visibility and team, with the same guard as every owned record: a rep may file only
    under their own teams."""
    if "visibility" in data:
        if data["visibility"] not in Visibility.values:
            raise ActionError("Unknown visibility.", {"visibility": ["Choose private, team or everyone."]})
        record.visibility = data["visibility"]
    if "team_id" in data:
        team_id = data["team_id"] or None
        if team_id is not None and not actor.is_admin and int(team_id) not in actor.team_ids():
            raise ActionError("You can only file this under one of your teams.", {"team": ["Not your team."]})
        record.team_id = team_id
    if record.visibility == Visibility.TEAM and record.team_id is None:
        raise ActionError("Choose a team for team visibility.", {"team": ["Required for team visibility."]})


def _query_fields(data: dict[str, Any], q: ListeningQuery) -> None:
    errors: dict[str, list[str]] = {}
    if "name" in data:
        name = str(data["name"] or "").strip()
        if not name:
            errors["name"] = ["Required."]
        q.name = name[:100]
    if "kind" in data:
        if data["kind"] not in QueryKind.values:
            errors["kind"] = [f"Choose one of {', '.join(QueryKind.values)}."]
        q.kind = data["kind"]
    if "text" in data:
        text = str(data["text"] or "")
        try:
            parse(text)
        except QuerySyntaxError as exc:
            errors["text"] = [str(exc)]
        q.text = text.strip()
    if "sources" in data:
        sources = [str(s) for s in (data["sources"] or [])]
        bad = [s for s in sources if s not in MENTION_KINDS]
        if bad:
            errors["sources"] = [f"Unknown source {bad[0]!r}."]
        q.sources = sorted(set(sources))
    if "languages" in data:
        langs = [str(s).strip().lower() for s in (data["languages"] or []) if str(s).strip()]
        if any(not (2 <= len(code) <= 3 and code.isalpha()) for code in langs):
            errors["languages"] = ["Use two- or three-letter language codes such as en, fr."]
        q.languages = sorted(set(langs))
    if "is_competitor" in data:
        q.is_competitor = bool(data["is_competitor"])
    if "is_active" in data:
        q.is_active = bool(data["is_active"])
    if errors:
        raise ActionError("The query could not be saved.", errors)


@transaction.atomic
def query_create(*, actor: User, data: dict[str, Any]) -> ListeningQuery:
    require_write(actor)
    q = ListeningQuery(owner=actor)
    if "text" not in data:
        data = {**data, "text": ""}
    if "name" not in data:
        data = {**data, "name": ""}
    _query_fields(data, q)
    _access_fields(actor, data, q)
    if q.kind == QueryKind.COMPETITOR and "is_competitor" not in data:
        q.is_competitor = True
    q.save()
    audit_record(actor=actor, obj=q, action=AuditEntry.Action.CREATE, summary=q.name)
    return q


@transaction.atomic
def query_update(
    *, actor: User, query: ListeningQuery, data: dict[str, Any], expected_version: int | None = None
) -> ListeningQuery:
    require_write(actor)
    _query_fields(data, query)
    _access_fields(actor, data, query)
    query.updated_at = timezone.now()
    if expected_version is not None and expected_version != query.version:
        raise ConflictError(current_version=query.version)
    old = query.version
    query.version = old + 1
    fields = [
        "name",
        "kind",
        "text",
        "sources",
        "languages",
        "is_competitor",
        "is_active",
        "visibility",
        "team_id",
        "updated_at",
        "version",
    ]
    written = ListeningQuery.objects.filter(pk=query.pk, version=old).update(
        **{f: getattr(query, f) for f in fields}
    )
    if not written:
        query.refresh_from_db(fields=["version"])
        raise ConflictError(current_version=query.version)
    audit_record(actor=actor, obj=query, action=AuditEntry.Action.UPDATE, summary=query.name)
    return query


@transaction.atomic
def query_delete(*, actor: User, query: ListeningQuery) -> None:
    require_write(actor)
    audit_record(actor=actor, obj=query, action=AuditEntry.Action.DELETE, summary=query.name)
    query.delete()


# --- alert rules -----------------------------------------------------------------------------


@transaction.atomic
def rule_save(
    *, actor: User, data: dict[str, Any], rule: AlertRule | None = None, expected_version: int | None = None
) -> AlertRule:
    """Create a rule, or change one the caller loaded through `get_editable` (a stale
    `expected_version` is a ConflictError and changes nothing)."""
    require_write(actor)
    creating = rule is None
    rule = rule or AlertRule(owner=actor)
    errors: dict[str, list[str]] = {}
    if creating or "name" in data:
        rule.name = str(data.get("name") or "").strip()[:100]
        if not rule.name:
            errors["name"] = ["Required."]
    if creating or "kind" in data:
        if data.get("kind") not in RuleKind.values:
            errors["kind"] = [f"Choose one of {', '.join(RuleKind.values)}."]
        rule.kind = data.get("kind", "")
    if "query_id" in data:
        from rapport.core.access import visible

        qid = data["query_id"] or None
        if qid is not None and not visible(ListeningQuery, actor).filter(pk=qid).exists():
            errors["query"] = ["Unknown query."]
        rule.query_id = qid
    if "metric" in data:
        if data["metric"] not in VelocityMetric.values:
            errors["metric"] = ["Choose volume or negative_share."]
        rule.metric = data["metric"]
    for name, lo, hi in (
        ("min_influence", 0, 100),
        ("window_hours", 1, 24 * 14),
        ("baseline_days", 1, 365),
        ("factor", 1, 100),
        ("min_count", 1, 1_000_000),
        ("cooldown_hours", 0, 24 * 30),
    ):
        if name in data and data[name] not in (None, ""):
            try:
                value = float(data[name])
            except (TypeError, ValueError):
                errors[name] = ["A number, please."]
                continue
            if not lo <= value <= hi:
                errors[name] = [f"Between {lo} and {hi}."]
                continue
            setattr(rule, name, value if name in ("min_influence", "factor") else int(value))
    for name in ("auto_convert", "email", "is_active"):
        if name in data:
            setattr(rule, name, bool(data[name]))
    if errors:
        raise ActionError("The rule could not be saved.", errors)
    _access_fields(actor, data, rule)
    rule.updated_at = timezone.now()
    if creating:
        rule.save()
    else:
        _save_versioned(rule, expected_version)
    audit_record(
        actor=actor,
        obj=rule,
        action=AuditEntry.Action.CREATE if creating else AuditEntry.Action.UPDATE,
        summary=rule.name,
    )
    return rule


def _save_versioned(record: AlertRule, expected_version: int | None) -> None:
    """Write every column in one UPDATE guarded by the version, so of two concurrent edits
    the second is refused instead of silently overwriting the first."""
    if expected_version is not None and expected_version != record.version:
        raise ConflictError(current_version=record.version)
    old = record.version
    record.version = old + 1
    model = type(record)
    values = {f.attname: getattr(record, f.attname) for f in model._meta.concrete_fields if not f.primary_key}
    if not model.objects.filter(pk=record.pk, version=old).update(**values):
        record.version = old
        current = model.objects.filter(pk=record.pk).values_list("version", flat=True).first()
        raise ConflictError(current_version=current)


@transaction.atomic
def rule_delete(*, actor: User, rule: AlertRule) -> int:
    """Delete a rule and the alerts it raised (they mean nothing without it); the mentions
    those alerts pointed at are kept. Returns how many alerts went with it. Pausing
    (`is_active`) is the way to stop a rule but keep its alerts."""
    require_write(actor)
    alerts = rule.alerts.count()
    audit_record(
        actor=actor, obj=rule, action=AuditEntry.Action.DELETE, summary=f"{rule.name} ({alerts} alerts)"
    )
    rule.delete()
    return alerts


# --- sources -------------------------------------------------------------------------------

MAX_CONFIG_CHARS = 20_000
_LIST_SETTINGS = ("urls", "terms", "hashtags")
_URL_SETTINGS = ("url", "instance", "api", "stream_api", "rules_api")
# Where each kind keeps its secret in the encrypted credentials.
TOKEN_FIELD = {"x": "bearer_token", "x_stream": "bearer_token", "bluesky": "access_jwt"}


def require_source_manager(actor: User) -> None:
    require_write(actor)
    if not can_manage_sources(actor):
        raise PermissionError_("Only managers and admins manage sources.")


def _source_fields(data: dict[str, Any], source: ListeningSource) -> None:
    errors: dict[str, list[str]] = {}
    if "kind" in data:
        if data["kind"] not in SourceKind.values:
            errors["kind"] = [f"Choose one of {', '.join(SourceKind.values)}."]
        source.kind = str(data["kind"] or "")
    if "name" in data:
        name = str(data["name"] or "").strip()
        if not name:
            errors["name"] = ["Required."]
        elif len(name) > 100:
            errors["name"] = ["At most 100 characters."]
        source.name = name[:100]
    if "config" in data:
        config = data["config"]
        message = _config_error(config)
        if message:
            errors["config"] = [message]
        else:
            source.config = config
    if "is_active" in data:
        source.is_active = bool(data["is_active"])
    if errors:
        raise ActionError("The source could not be saved.", errors)
    token = str(data.get("token") or "").strip()
    if token:
        source.credentials = {TOKEN_FIELD.get(source.kind, "access_token"): token}
    elif data.get("clear_token"):
        source.credentials_encrypted = ""


def _config_error(config: Any) -> str:
    """The settings are read by the pollers without trusting them, but a wrong shape is
    better refused here with a message than found later as a failing poll."""
    import json

    if not isinstance(config, dict):
        return 'Settings must be a JSON object, e.g. {"urls": ["https://…/feed.xml"]}.'
    if len(json.dumps(config)) > MAX_CONFIG_CHARS:
        return f"Settings are limited to {MAX_CONFIG_CHARS:,} characters."
    for key in _LIST_SETTINGS:
        value = config.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 50
        ):
            return f'"{key}" must be a list of at most 50 strings.'
    urls = [config.get(k) for k in _URL_SETTINGS if config.get(k) is not None]
    urls += config.get("urls") or []
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return f"{str(url)[:80]!r} is not an http(s) URL."
    return ""


@transaction.atomic
def source_create(*, actor: User, data: dict[str, Any]) -> ListeningSource:
    require_source_manager(actor)
    source = ListeningSource()
    _source_fields({"name": "", "config": {}, **data, "kind": data.get("kind", "")}, source)
    source.save()
    audit_record(actor=actor, obj=source, action=AuditEntry.Action.CREATE, summary=source.name)
    return source


@transaction.atomic
def source_update(*, actor: User, source: ListeningSource, data: dict[str, Any]) -> ListeningSource:
    """Name, settings, token and active flag; the kind stays (its cursors mean nothing to
    another kind: delete and add instead)."""
    require_source_manager(actor)
    if "kind" in data and data["kind"] != source.kind:
        raise ActionError("The kind of a source cannot change.", {"kind": ["Add a new source instead."]})
    _source_fields(data, source)
    source.save()
    audit_record(actor=actor, obj=source, action=AuditEntry.Action.UPDATE, summary=source.name)
    return source


@transaction.atomic
def source_delete(*, actor: User, source: ListeningSource) -> int:
    """Delete a source and its cursors. Its mentions stay (their `source` becomes empty; the
    kind, dashboards and alerts are unchanged). Returns how many mentions were kept."""
    require_source_manager(actor)
    kept = Mention.objects.filter(source=source).count()
    audit_record(
        actor=actor,
        obj=source,
        action=AuditEntry.Action.DELETE,
        summary=f"{source.name} ({kept} mentions kept)",
    )
    source.delete()
    return kept


# --- mentions ------------------------------------------------------------------------------


@transaction.atomic
def mention_set_state(*, actor: User, mention: Mention, state: str) -> Mention:
    require_write(actor)
    if state not in MentionState.values or state == MentionState.CONVERTED:
        raise ActionError("Unknown state.", {"state": ["Choose new, reviewed or ignored."]})
    mention.state = state
    if mention.owner_id is None:
        mention.owner = actor
    mention.save(update_fields=["state", "owner"])
    audit_record(actor=actor, obj=mention, action=AuditEntry.Action.UPDATE, summary=f"state → {state}")
    return mention


@transaction.atomic
def mention_correct_sentiment(*, actor: User, mention: Mention, label: str) -> Mention:
    """One click: the mention takes the agent's label at once (and the dashboards with it),
    and the correction teaches the learned model (`rapport.intelligence`)."""
    from rapport.intelligence.actions import correction_record

    require_write(actor)
    if label not in Sentiment.values:
        raise ActionError("Unknown label.", {"label": ["Choose negative, neutral or positive."]})
    if not mention.text.strip():
        raise ActionError("This mention has no text to learn from.")
    # Mentions are shared, not owned records, so the correction carries the text, not a link.
    correction_record(user=actor, text=mention.text, label=label)
    old = mention.sentiment
    mention.sentiment = label
    mention.sentiment_corrected = True
    mention.save(update_fields=["sentiment", "sentiment_corrected"])
    rollups.sentiment_changed(mention, old)
    audit_record(
        actor=actor, obj=mention, action=AuditEntry.Action.UPDATE, summary=f"sentiment {old} → {label}"
    )
    return mention


def can_manage_sources(user: User) -> bool:
    return user.is_admin or user.role == Role.MANAGER
