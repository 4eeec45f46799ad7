"""Writes: recording agents' corrections and training (and perhaps activating) a learned model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import transaction

from rapport.audit.actions import audit_record
from rapport.audit.models import AuditEntry
from rapport.core.access import get_visible
from rapport.core.errors import ActionError
from rapport.core.models import OwnedRecord
from rapport.intelligence.analysis import SENTIMENTS, analyse, forget_active_model
from rapport.intelligence.models import Correction, SentimentModel

MAX_TEXT = 20_000


def _source(user: Any, object_type: str, object_id: int | None) -> tuple[str, int | None]:
    """A correction may point at the record it came from; only one the user can see (else 404)."""
    if not object_type and object_id is None:
        return "", None
    if not object_type or object_id is None:
        raise ActionError(
            "Give both object_type and object_id, or neither.", {"object_type": ["Incomplete."]}
        )
    try:
        model = apps.get_model(object_type)
    except (LookupError, ValueError):
        raise ActionError("Unknown object type.", {"object_type": ["Unknown object type."]}) from None
    if not issubclass(model, OwnedRecord):
        raise ActionError("Corrections cannot refer to that type.", {"object_type": ["Not allowed."]})
    get_visible(model, user, object_id)
    return model._meta.label_lower, object_id


@transaction.atomic
def correction_record(
    *, user: Any, text: str, label: str, object_type: str = "", object_id: int | None = None
) -> Correction:
    if not getattr(user, "can_write", False):
        raise ActionError("Your role is read-only.")
    text = (text or "").strip()
    if not text:
        raise ActionError("The text is empty.", {"text": ["Required."]})
    if len(text) > MAX_TEXT:
        raise ActionError(f"The text is longer than {MAX_TEXT} characters.", {"text": ["Too long."]})
    if label not in SENTIMENTS:
        raise ActionError("Unknown label.", {"label": [f"Choose one of {', '.join(SENTIMENTS)}."]})
    kind, pk = _source(user, object_type, object_id)
    predicted = analyse(text, backend="default").sentiment
    correction = Correction.objects.create(
        text=text, label=label, predicted=predicted, object_type=kind, object_id=pk, user=user
    )
    audit_record(actor=user, obj=correction, action=AuditEntry.Action.CREATE, summary=f"sentiment → {label}")
    transaction.on_commit(retrain_if_due_later)
    return correction


@dataclass(frozen=True)
class TrainingResult:
    model: SentimentModel
    recall: dict[str, float]
    accuracy: float
    baseline_accuracy: float


def sentiment_model_train(
    *,
    examples: Sequence[tuple[str, str]],
    folds: int = 5,
    user: Any = None,
    trigger: str = "manual",
    corrections: int = 0,
    **params: Any,
) -> TrainingResult:
    """Cross-validate, fit on everything, store; activate only if CV beat the rules.

    The newest model's verdict stands: storing it deactivates the previous one, because the
    newest was judged on the most (and most recent) examples. One exception: an automatic
    retraining (agents' corrections only) never displaces an active model someone trained
    by hand on more examples (a labelled file); it is kept, inactive, with a note."""
    from rapport.intelligence import learned

    texts = [t for t, _ in examples]
    labels = [label for _, label in examples]
    if folds < 2:
        raise ActionError("Cross-validation needs at least 2 folds.", {"folds": ["At least 2."]})
    if len(set(labels)) < 2:
        raise ActionError("Training needs examples of at least two labels.")
    try:
        cv = learned.cross_validate(texts, labels, folds, **params)
    except ValueError as exc:
        raise ActionError(str(exc)) from exc
    model = learned.fit(texts, labels, **params)
    beats = cv.macro_recall >= cv.baseline_macro_recall + learned.MIN_GAIN
    note = (
        f"CV {cv.macro_recall:.3f} beats the rules' {cv.baseline_macro_recall:.3f} by at least {learned.MIN_GAIN}"
        if beats
        else f"CV {cv.macro_recall:.3f} does not beat the rules' {cv.baseline_macro_recall:.3f} by {learned.MIN_GAIN}"
    )
    with transaction.atomic():
        current = SentimentModel.objects.select_for_update().filter(active=True).defer("blob").first()
        keep = (
            trigger == "automatic"
            and current is not None
            and current.trigger == "manual"
            and current.examples > len(texts)
        )
        if keep and current is not None:
            note = f"kept model {current.pk}, trained by hand on {current.examples} examples; " + note
        else:
            SentimentModel.objects.filter(active=True).update(active=False)
        row = SentimentModel.objects.create(
            examples=len(texts),
            folds=folds,
            cv_macro_recall=round(cv.macro_recall, 4),
            baseline_macro_recall=round(cv.baseline_macro_recall, 4),
            active=beats and not keep,
            blob=model.to_bytes(),
            trained_by=user if getattr(user, "pk", None) else None,
            trigger=trigger,
            corrections=corrections,
            note=note[:300],
        )
        audit_record(
            actor=user,
            obj=row,
            action=AuditEntry.Action.CREATE,
            summary=f"learned sentiment model, CV {cv.macro_recall:.3f} vs rules {cv.baseline_macro_recall:.3f}",
        )
    forget_active_model()
    return TrainingResult(
        model=row, recall=cv.recall, accuracy=cv.accuracy, baseline_accuracy=cv.baseline_accuracy
    )


# --- automatic retraining from agents' corrections ------------------------------------------


def can_retrain(user: Any) -> bool:
    """Retraining on demand changes what every agent sees: admins and managers."""
    from rapport.accounts.models import Role

    return bool(getattr(user, "can_write", False)) and (user.is_admin or user.role == Role.MANAGER)


def retrain_after() -> int:
    """New corrections that make a retraining due (`RAPPORT_SENTIMENT_RETRAIN_AFTER`)."""
    return max(1, int(getattr(settings, "RAPPORT_SENTIMENT_RETRAIN_AFTER", 50)))


@dataclass(frozen=True)
class RetrainState:
    corrections: int
    new_corrections: int
    retrain_after: int
    due: bool
    waiting_for: str
    latest: SentimentModel | None
    active: SentimentModel | None


def retrain_state() -> RetrainState:
    """What the settings page and the API show: how many corrections there are, how many are
    new since the last training, whether a retraining is due, and the latest/active models."""
    from rapport.intelligence import learned

    models = SentimentModel.objects.defer("blob")
    latest = models.order_by("-created_at", "-id").first()
    active = models.filter(active=True).first()
    total = Correction.objects.count()
    new = Correction.objects.filter(created_at__gt=latest.created_at).count() if latest else total
    need = retrain_after()
    waiting = ""
    if total < learned.MIN_EXAMPLES:
        waiting = f"{learned.MIN_EXAMPLES - total} more correction(s) before a first training"
    elif new < need:
        waiting = f"{need - new} more new correction(s) before the next training"
    return RetrainState(
        corrections=total,
        new_corrections=new,
        retrain_after=need,
        due=not waiting,
        waiting_for=waiting,
        latest=latest,
        active=active,
    )


def sentiment_retrain(*, force: bool = False, user: Any = None) -> TrainingResult | None:
    """Retrain from the corrections when enough new ones came in (or when forced), with the
    same cross-validation and activation rule as a manual training. None when not due, or
    when the corrections cannot train a model yet (too few, one label only)."""
    from rapport.intelligence import learned

    state = retrain_state()
    if not (state.due or (force and state.corrections >= learned.MIN_EXAMPLES)):
        return None
    examples = learned.training_examples()
    if len({label for _, label in examples}) < 2 or len(examples) < learned.MIN_EXAMPLES:
        return None
    return sentiment_model_train(
        examples=examples, folds=5, user=user, trigger="automatic", corrections=len(examples)
    )


def retrain_if_due_later() -> None:
    """After a correction: when it completes a batch of new ones, queue a retraining (the
    task checks again, so a duplicate enqueue trains once)."""
    state = retrain_state()
    if state.due and (state.new_corrections - state.retrain_after) % state.retrain_after == 0:
        from rapport.intelligence.tasks import retrain_sentiment

        retrain_sentiment.enqueue()
