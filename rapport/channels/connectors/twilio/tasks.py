"""A finished call: store its summary message through the pipeline, then attach the `Call`
row (direction, number, duration, outcome) to it, in the person's conversation. Idempotent."""

from django_tasks import task


def log_call(payload_id: int) -> int | None:
    from rapport.channels.connectors.twilio.inbound import call_outcome, params
    from rapport.channels.models import RawPayload
    from rapport.conversations.ingest import process_payload, system_user
    from rapport.conversations.models import Call, Message

    process_payload(payload_id)
    payload = RawPayload.objects.select_related("channel").filter(pk=payload_id).first()
    if payload is None:
        return None
    p = params(payload)
    message = Message.objects.filter(channel=payload.channel, external_id=p.get("CallSid", "")).first()
    if message is None or not p.get("CallSid"):
        return None
    direction, number, outcome, duration = call_outcome(p)
    call, _ = Call.objects.get_or_create(
        message=message,
        defaults={
            "conversation": message.conversation,
            "direction": direction,
            "number": number[:40],
            "duration_s": duration,
            "outcome": outcome,
            "logged_by": system_user(),
        },
    )
    return call.pk


@task()
def log_call_task(payload_id: int) -> int | None:
    return log_call(payload_id)
