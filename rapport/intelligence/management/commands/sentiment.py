"""`rapport sentiment eval FILE.tsv` and `rapport sentiment train FILE.tsv`.

Files hold `text<TAB>label` lines (negative / neutral / positive). Both commands end with one
JSON line of figures, so scripts can read the last line and people the lines above it."""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from rapport.core.errors import ActionError
from rapport.intelligence.analysis import SENTIMENTS, BackendUnavailable, analyse_many, get_backend
from rapport.intelligence.metrics import LabelledFileError, Scores, read_labelled, score
from rapport.intelligence.rules import _read_cached


def _part(value: str) -> tuple[int, int]:
    try:
        i, k = (int(x) for x in value.split("/"))
    except ValueError:
        raise CommandError("--part takes I/K, for example 1/2.") from None
    if not 1 <= i <= k:
        raise CommandError("--part I/K needs 1 ≤ I ≤ K.")
    return i, k


class Command(BaseCommand):
    help = "Evaluate or train sentiment analysis on labelled text<TAB>label files."
    # needs only its own models, not URLs or templates: it keeps working while a web module is broken
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="cmd", required=True)
        ev = sub.add_parser("eval", help="Per-class recall, accuracy and speed of a backend on FILE.")
        ev.add_argument("file")
        ev.add_argument("--backend", default="default", choices=["default", "learned", "transformer", "auto"])
        ev.add_argument("--cv", type=int, default=0, help="learned: K-fold cross-validation on FILE itself.")
        ev.add_argument("--part", default="", help="Only lines i with i %% K == I-1 (1-based I/K, e.g. 2/2).")
        ev.add_argument("--model-dir", default=None, help="transformer: local model directory.")
        ev.add_argument("--model", type=int, default=None, help="learned: a stored model id, active or not.")
        tr = sub.add_parser("train", help="Teach the learned backend from FILE (plus agents' corrections).")
        tr.add_argument("file")
        tr.add_argument(
            "--cv", type=int, default=5, help="Folds for the cross-validated figures (default 5)."
        )
        tr.add_argument("--no-corrections", action="store_true", help="Train on FILE alone.")
        rt = sub.add_parser(
            "retrain",
            help="Retrain from agents' corrections if enough new ones came in (what the queue does).",
        )
        rt.add_argument("--force", action="store_true", help="Retrain now, due or not.")

    def handle(self, *args, **opts):
        if opts["cmd"] == "retrain":
            return self._retrain(opts["force"])
        try:
            rows = read_labelled(opts["file"])
        except LabelledFileError as exc:
            raise CommandError(str(exc)) from exc
        if opts["cmd"] == "train":
            return self._train(rows, opts)
        if opts["part"]:
            i, k = _part(opts["part"])
            rows = [r for n, r in enumerate(rows) if n % k == i - 1]
        if opts["backend"] == "learned" and opts["cv"]:
            return self._eval_cv(rows, opts["cv"])
        return self._eval(rows, opts)

    def _report(self, title: str, s: Scores, texts_per_s: float, extra: dict) -> None:
        self.stdout.write(title)
        for label in SENTIMENTS:
            if label in s.recall:
                self.stdout.write(f"  recall {label:<9} {s.recall[label]:.4f}  (n={s.support[label]})")
        self.stdout.write(f"  macro recall     {s.macro_recall:.4f}")
        self.stdout.write(f"  accuracy         {s.accuracy:.4f}")
        self.stdout.write(f"  speed            {texts_per_s:,.0f} texts/s (CPU time of one process)")
        line = {
            **extra,
            "n": s.n,
            "macro_recall": round(s.macro_recall, 4),
            "accuracy": round(s.accuracy, 4),
            "texts_per_s": round(texts_per_s, 1),
        }
        self.stdout.write(json.dumps(line))

    def _eval(self, rows, opts) -> None:
        try:
            if opts["backend"] == "learned" and opts["model"] is not None:
                backend = self._stored_model(opts["model"])
            else:
                backend = get_backend(opts["backend"], model_dir=opts["model_dir"])
        except BackendUnavailable as exc:
            raise CommandError(str(exc)) from exc
        excluded = 0
        model = getattr(backend, "model", None)
        if model is not None and hasattr(model, "has_seen"):
            # a model scored on its own training lines would flatter itself
            kept = [r for r in rows if not model.has_seen(r[0])]
            excluded = len(rows) - len(kept)
            rows = kept
            self.stdout.write(f"Left out {excluded} line(s) the learned model was trained on.")
            if not rows:
                raise CommandError("Every line was used in training; use --cv K for held-out figures.")
        texts = [t for t, _ in rows]
        _read_cached.cache_clear()  # time real work, not cache hits
        # CPU time, not wall time: on a shared machine wall time measures the neighbours
        started = time.process_time()
        results = analyse_many(texts, backend=backend)
        elapsed = time.process_time() - started
        s = score([label for _, label in rows], [a.sentiment for a in results])
        extra = {"backend": backend.name}
        if excluded:
            extra["excluded_trained_lines"] = excluded
        self._report(
            f"Backend {backend.name} on {len(rows)} line(s):", s, len(texts) / max(elapsed, 1e-9), extra
        )

    def _stored_model(self, pk: int):
        from rapport.intelligence import learned
        from rapport.intelligence.models import SentimentModel

        row = SentimentModel.objects.filter(pk=pk).first()
        if row is None:
            raise CommandError(f"No learned model {pk}.")
        return learned.LearnedBackend(learned.Model.from_bytes(row.blob), row.pk)

    def _eval_cv(self, rows, k: int) -> None:
        from rapport.intelligence import learned

        texts = [t for t, _ in rows]
        labels = [label for _, label in rows]
        try:
            cv = learned.cross_validate(texts, labels, k)
        except (ValueError, ImportError) as exc:
            raise CommandError(str(exc)) from exc
        model = learned.fit(texts, labels)
        _read_cached.cache_clear()
        started = time.process_time()
        analyse_many(texts, backend=learned.LearnedBackend(model))
        elapsed = time.process_time() - started
        s = score(labels, cv.predicted)
        self.stdout.write(f"Rules on the same lines: macro recall {cv.baseline_macro_recall:.4f}")
        self._report(
            f"Backend learned, {k}-fold cross-validation on {len(rows)} line(s):",
            s,
            len(texts) / max(elapsed, 1e-9),
            {"backend": "learned", "cv": k, "baseline_macro_recall": round(cv.baseline_macro_recall, 4)},
        )

    def _retrain(self, force: bool) -> None:
        from rapport.intelligence.actions import retrain_state, sentiment_retrain

        try:
            result = sentiment_retrain(force=force)
        except ActionError as exc:
            raise CommandError(exc.message) from exc
        if result is None:
            state = retrain_state()
            self.stdout.write(f"Not retrained: {state.waiting_for or 'the corrections have only one label'}.")
            self.stdout.write(json.dumps({"retrained": False, "corrections": state.corrections}))
            return
        m = result.model
        self.stdout.write(f"Model {m.pk}: {m.note}; {'active' if m.active else 'not active'}.")
        self.stdout.write(
            json.dumps(
                {
                    "retrained": True,
                    "model_id": m.pk,
                    "examples": m.examples,
                    "cv_macro_recall": m.cv_macro_recall,
                    "baseline_macro_recall": m.baseline_macro_recall,
                    "active": m.active,
                }
            )
        )

    def _train(self, rows, opts) -> None:
        from rapport.intelligence.actions import sentiment_model_train
        from rapport.intelligence.learned import training_examples
        from rapport.intelligence.models import Correction

        examples = rows if opts["no_corrections"] else training_examples(rows)
        corrections = 0 if opts["no_corrections"] else Correction.objects.count()
        try:
            result = sentiment_model_train(examples=examples, folds=opts["cv"], corrections=corrections)
        except ActionError as exc:
            raise CommandError(exc.message) from exc
        except ImportError as exc:
            raise CommandError(f"The learned backend needs NumPy: {exc}.") from exc
        m = result.model
        self.stdout.write(
            f"Trained model {m.pk} on {m.examples} example(s), {m.folds}-fold cross-validation:"
        )
        for label in SENTIMENTS:
            if label in result.recall:
                self.stdout.write(f"  recall {label:<9} {result.recall[label]:.4f}")
        self.stdout.write(
            f"  macro recall     {m.cv_macro_recall:.4f}  (rules: {m.baseline_macro_recall:.4f})"
        )
        verdict = "active: it beat the rules" if m.active else "not active: it did not beat the rules"
        self.stdout.write(f"  {verdict}")
        self.stdout.write(
            json.dumps(
                {
                    "backend": "learned",
                    "model_id": m.pk,
                    "examples": m.examples,
                    "cv": m.folds,
                    "cv_macro_recall": m.cv_macro_recall,
                    "baseline_macro_recall": m.baseline_macro_recall,
                    "accuracy": round(result.accuracy, 4),
                    "active": m.active,
                }
            )
        )
