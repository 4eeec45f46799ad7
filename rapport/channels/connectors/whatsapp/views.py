"""The Meta webhook view, plus delivery receipts: `statuses[]` update the delivery status of
the outbound message they name, on every delivery (idempotent), so a receipt is applied even
when the queue is down."""

from django.db.models import Q

from rapport.channels.connectors.meta.views import make_view
from rapport.channels.connectors.whatsapp.inbound import receipts
from rapport.channels.models import Channel, ChannelKind, RawPayload
from rapport.conversations.models import Delivery, Direction, Message

# Ranked so a late "sent" never overwrites "delivered"/"read" (Meta does not order them).
DELIVERED = getattr(Delivery, "DELIVERED", Delivery.SENT)
READ = getattr(Delivery, "READ", DELIVERED)
STATUS = {"sent": Delivery.SENT, "delivered": DELIVERED, "read": READ, "failed": Delivery.FAILED}
RANK = {Delivery.QUEUED: 0, Delivery.SENT: 1, DELIVERED: 2, READ: 3, Delivery.FAILED: 4}


def apply_receipts(channel: Channel, items: list[tuple[str, str, str]]) -> int:
    changed = 0
    for external_id, status, error in items:
        new = STATUS.get(status)
        if new is None:
            continue
        lower = [s for s, r in RANK.items() if r < RANK[new]]
        qs = Message.objects.filter(
            channel=channel, direction=Direction.OUTBOUND, external_id=external_id
        ).filter(Q(delivery_status__in=lower))
        fields = {"delivery_status": new}
        if new == Delivery.FAILED:
            fields["delivery_error"] = (error or "Not delivered")[:500]
        changed += qs.update(**fields)
    return changed


def _after_store(channel: Channel, payload: RawPayload) -> None:
    apply_receipts(channel, receipts(payload))


receive = make_view(ChannelKind.WHATSAPP, after_store=_after_store)
