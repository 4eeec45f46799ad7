"""Queue tasks: the automatic retraining of the learned sentiment model."""

from django_tasks import task


@task()
def retrain_sentiment(force: bool = False) -> int | None:
    """Retrain from agents' corrections if due (checked again here: enqueued twice, it trains
    once). Returns the new model's id, or None when nothing was due."""
    from rapport.intelligence.actions import sentiment_retrain

    result = sentiment_retrain(force=force)
    return result.model.pk if result else None
