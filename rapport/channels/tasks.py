"""Background tasks of the channels app: thin wrappers taking ids, idempotent, silent if the
row is gone."""

from django_tasks import task


@task()
def fetch_message_media(message_id: int) -> int:
    """Fetch a message's pending attachments (see rapport.channels.media). Nothing queues it
    any more (fetch_messages_media does); kept for jobs queued before the upgrade."""
    from rapport.channels.media import fetch_message

    return fetch_message(message_id)


@task()
def fetch_messages_media(message_ids: list[int]) -> int:
    """fetch_message_media for several messages: an ingest batch queues one job per chunk of
    its messages with attachments instead of one per message (each queued job is a write in
    the database queue, made right after the batch commits)."""
    from rapport.channels.media import fetch_message

    return sum(fetch_message(pk) for pk in message_ids)
