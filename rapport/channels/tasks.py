"""Background tasks of the channels app: thin wrappers taking ids, idempotent, silent if the
row is gone."""

from django_tasks import task


@task()
def fetch_message_media(message_id: int) -> int:
    """Fetch a message's pending attachments (see rapport.channels.media)."""
    from rapport.channels.media import fetch_message

    return fetch_message(message_id)
