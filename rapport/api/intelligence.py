"""Text intelligence: sentiment, intent and urgency for any text; agents' corrections; the
learned models and their evidence; the retraining state, and retraining on demand."""

from typing import Literal

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field, model_validator

from rapport.api.schemas import require_writer
from rapport.core.errors import ActionError
from rapport.intelligence import actions
from rapport.intelligence.analysis import BackendUnavailable, analyse_many
from rapport.intelligence.models import SentimentModel

router = Router(tags=["intelligence"])

MAX_TEXTS = 1000
MAX_CHARS = 100_000


class AnalyseIn(Schema):
    text: str | None = Field(default=None, max_length=MAX_CHARS)
    texts: list[str] | None = Field(default=None, max_length=MAX_TEXTS)
    backend: Literal["auto", "default", "learned", "transformer"] = "auto"

    @model_validator(mode="after")
    def one_of(self) -> "AnalyseIn":
        if (self.text is None) == (self.texts is None):
            raise ValueError("Send either `text` or `texts`.")
        if self.texts is not None and any(len(t) > MAX_CHARS for t in self.texts):
            raise ValueError(f"Each text may have at most {MAX_CHARS} characters.")
        return self


class AnalysisOut(Schema):
    sentiment: Literal["negative", "neutral", "positive"]
    score: float
    intent: Literal["complaint", "question", "purchase_intent", "churn_intent", "praise", "other"]
    urgency: Literal["low", "normal", "high"]
    sentiment_confidence: float
    intent_confidence: float
    urgency_confidence: float
    backend: str


class AnalysesOut(Schema):
    analyses: list[AnalysisOut]


class CorrectionIn(Schema):
    text: str = Field(max_length=20_000)
    label: Literal["negative", "neutral", "positive"]
    object_type: str = Field(default="", max_length=100, description="app_label.model, e.g. people.person")
    object_id: int | None = Field(default=None, ge=1)


class CorrectionOut(Schema):
    id: int
    text: str
    label: str
    predicted: str
    object_type: str
    object_id: int | None
    created_at: str


class ModelOut(Schema):
    id: int
    created_at: str
    examples: int
    folds: int
    cv_macro_recall: float
    baseline_macro_recall: float
    active: bool
    trigger: str
    corrections: int
    note: str


class StatusOut(Schema):
    backend: str = Field(
        description="What analyses sentiment now: learned (a model beat the rules) or default."
    )
    active_model: ModelOut | None
    latest_model: ModelOut | None
    corrections: int
    new_corrections: int = Field(description="Corrections since the latest model was trained.")
    retrain_after: int = Field(description="New corrections that trigger an automatic retraining.")
    due: bool
    waiting_for: str


def _model_out(m: SentimentModel) -> dict:
    return {
        "id": m.pk,
        "created_at": m.created_at.isoformat(),
        "examples": m.examples,
        "folds": m.folds,
        "cv_macro_recall": m.cv_macro_recall,
        "baseline_macro_recall": m.baseline_macro_recall,
        "active": m.active,
        "trigger": m.trigger,
        "corrections": m.corrections,
        "note": m.note,
    }


@router.post("/intelligence/analyse", response=AnalysesOut)
def analyse(request: HttpRequest, payload: AnalyseIn) -> dict:
    texts = [payload.text] if payload.text is not None else list(payload.texts or [])
    try:
        results = analyse_many(texts, backend=payload.backend)
    except BackendUnavailable as exc:
        raise ActionError(str(exc), {"backend": [str(exc)]}) from exc
    return {"analyses": [a.as_dict() for a in results]}


@router.post("/intelligence/corrections", response={201: CorrectionOut})
def correction_create(request: HttpRequest, payload: CorrectionIn) -> Status[dict]:
    user = require_writer(request)
    c = actions.correction_record(
        user=user,
        text=payload.text,
        label=payload.label,
        object_type=payload.object_type,
        object_id=payload.object_id,
    )
    return Status(
        201,
        {
            "id": c.pk,
            "text": c.text,
            "label": c.label,
            "predicted": c.predicted,
            "object_type": c.object_type,
            "object_id": c.object_id,
            "created_at": c.created_at.isoformat(),
        },
    )


@router.get("/intelligence/models", response=list[ModelOut])
def model_list(request: HttpRequest) -> list[dict]:
    return [_model_out(m) for m in SentimentModel.objects.defer("blob").order_by("-created_at", "-id")[:100]]


@router.get("/intelligence/status", response=StatusOut)
def status(request: HttpRequest) -> dict:
    """The learned backend's state: in use or not, its evidence, and when it retrains next."""
    state = actions.retrain_state()
    return {
        "backend": "learned" if state.active else "default",
        "active_model": _model_out(state.active) if state.active else None,
        "latest_model": _model_out(state.latest) if state.latest else None,
        "corrections": state.corrections,
        "new_corrections": state.new_corrections,
        "retrain_after": state.retrain_after,
        "due": state.due,
        "waiting_for": state.waiting_for,
    }


@router.post("/intelligence/retrain", response={202: dict})
def retrain(request: HttpRequest) -> Status[dict]:
    """Queue a retraining from the corrections now (admins and managers); the usual rule
    decides whether the new model is used."""
    from ninja.errors import HttpError

    from rapport.intelligence.tasks import retrain_sentiment

    if not actions.can_retrain(request.auth):  # type: ignore[attr-defined]
        raise HttpError(403, "Only managers and admins can retrain.")
    retrain_sentiment.enqueue(True)
    return Status(202, {"queued": True})
