"""Writes: recording agents' corrections and training (and perhaps activating) a learned model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.apps import apps
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
    return correction


@dataclass(frozen=True)
class TrainingResult:
    model: SentimentModel
    recall: dict[str, float]
    accuracy: float
    baseline_accuracy: float


def sentiment_model_train(
    *, examples: Sequence[tuple[str, str]], folds: int = 5, user: Any = None, **params: Any
) -> TrainingResult:
    """Cross-validate, fit on everything, store; activate only if CV beat the rules.

    The newest model's verdict stands: storing it deactivates the previous one, because the
    newest was judged on the most (and most recent) examples."""
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
    with transaction.atomic():
        SentimentModel.objects.filter(active=True).update(active=False)
        row = SentimentModel.objects.create(
            examples=len(texts),
            folds=folds,
            cv_macro_recall=round(cv.macro_recall, 4),
            baseline_macro_recall=round(cv.baseline_macro_recall, 4),
            active=beats,
            blob=model.to_bytes(),
            trained_by=user if getattr(user, "pk", None) else None,
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
