"""Optional backend: a local sequence-classification model through `transformers`.

Never downloads: the model directory must already be on disk (`settings.RAPPORT_MODEL_DIR` or
a path given), and loading runs with `local_files_only=True` and the hub set offline. Neither
`transformers` nor `torch` is a dependency of Rapport; without them this backend reports
itself unavailable and the rules keep working.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from rapport.intelligence.analysis import BackendUnavailable, Sentiment
from rapport.intelligence.rules import Reading

BATCH = 32
MAX_TOKENS = 256


def _label_map(id2label: dict[int, str]) -> list[str]:
    """Model label names → ours. Unnamed labels follow the common convention
    (2 labels: negative, positive; 3 labels: negative, neutral, positive)."""
    n = len(id2label)
    out: list[str] = []
    for i in range(n):
        name = str(id2label.get(i, "")).lower()
        if name.startswith("neg"):
            out.append("negative")
        elif name.startswith("neu"):
            out.append("neutral")
        elif name.startswith("pos"):
            out.append("positive")
        elif n == 3:
            out.append(("negative", "neutral", "positive")[i])
        elif n == 2:
            out.append(("negative", "positive")[i])
        else:
            raise BackendUnavailable(f"Cannot map the model's label {id2label.get(i)!r} to a sentiment.")
    return out


class TransformerBackend:
    name = "transformer"

    def __init__(self, tokenizer: Any, model: Any, labels: list[str]) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.labels = labels
        # a model cannot read past its position table, whatever the tokenizer claims
        limits = [MAX_TOKENS, getattr(model.config, "max_position_embeddings", MAX_TOKENS)]
        tok_max = getattr(tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
            limits.append(tok_max)
        self.max_tokens = min(limits)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> TransformerBackend:
        if path is None:
            from django.conf import settings

            path = getattr(settings, "RAPPORT_MODEL_DIR", None)
        if not path:
            raise BackendUnavailable("No model directory: set RAPPORT_MODEL_DIR or pass a path.")
        return _load(str(Path(path).resolve()))

    def sentiments(self, texts: Sequence[str], readings: Sequence[Reading]) -> list[Sentiment]:
        import torch

        out: list[Sentiment] = []
        neg = self.labels.index("negative") if "negative" in self.labels else None
        pos = self.labels.index("positive") if "positive" in self.labels else None
        for start in range(0, len(texts), BATCH):
            batch = [t if t.strip() else "." for t in texts[start : start + BATCH]]
            enc = self.tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
            )
            with torch.no_grad():
                prob = torch.softmax(self.model(**enc).logits, dim=-1).tolist()
            for row in prob:
                k = max(range(len(row)), key=row.__getitem__)
                s = (row[pos] if pos is not None else 0.0) - (row[neg] if neg is not None else 0.0)
                out.append((self.labels[k], round(s, 4), round(row[k], 4)))
        return out


@lru_cache(maxsize=2)
def _load(path: str) -> TransformerBackend:
    if not Path(path).is_dir():
        raise BackendUnavailable(f"Model directory {path} does not exist.")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import torch  # noqa: F401
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as exc:
        raise BackendUnavailable(f"The transformer backend needs `transformers` and `torch`: {exc}.") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BackendUnavailable(f"Cannot load a model from {path}: {exc}") from exc
    model.eval()
    return TransformerBackend(tokenizer, model, _label_map(dict(model.config.id2label)))
