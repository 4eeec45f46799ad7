"""Background tasks of the inbox: thin wrappers taking ids, idempotent, silent if the row is gone."""

from django_tasks import task


@task()
def process_raw_payload(payload_id: int) -> int:
    """Process the pending payloads in one batch, oldest first, this one among them: under
    load one job stores hundreds of messages and the jobs queued behind it find little left
    to do. Returns the number of messages stored or found already stored."""
    from rapport.channels.models import PayloadStatus, RawPayload
    from rapport.conversations.ingest import process_batch

    result = process_batch()
    if RawPayload.objects.filter(pk=payload_id, status=PayloadStatus.RECEIVED).exists():
        # A backlog longer than a batch, or this payload failed in the batch: its own turn.
        again = process_batch(ids=[payload_id])
        result.created += again.created
        result.duplicates += again.duplicates
    return result.created + result.duplicates


@task()
def deliver_message(message_id: int) -> str:
    from rapport.conversations.actions import message_deliver

    return message_deliver(message_id=message_id)


@task()
def sla_check_task() -> dict:
    from rapport.conversations.routing import sla_check

    return sla_check()
