"""Background tasks of the inbox: thin wrappers taking ids, idempotent, silent if the row is gone."""

from django_tasks import task


@task()
def process_raw_payload(payload_id: int) -> int:
    from rapport.conversations.ingest import process_payload

    return len(process_payload(payload_id))


@task()
def deliver_message(message_id: int) -> str:
    from rapport.conversations.actions import message_deliver

    return message_deliver(message_id=message_id)


@task()
def sla_check_task() -> dict:
    from rapport.conversations.routing import sla_check

    return sla_check()
