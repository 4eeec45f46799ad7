"""Generic webhook outbound: POST the reply as JSON to the channel's `outbound_url`, signed
like inbound deliveries (so the receiver verifies it the same way). 2xx = sent; 401/403/404/
410 = permanent (the endpoint is gone or refuses us); anything else is retried."""

import json

from rapport.channels import net
from rapport.channels.base import TransportError
from rapport.channels.connectors.webhook import signing
from rapport.channels.models import Channel

PERMANENT = {400, 401, 403, 404, 405, 410, 422}


def build(channel: Channel, message) -> dict:  # noqa: ANN001 - conversations.Message, imported lazily
    conversation = message.conversation
    last_in = conversation.messages.filter(direction="inbound").order_by("-id").first()
    return {
        "event": "message.outbound",
        "message": {
            "id": f"rapport-{message.pk}",
            "conversation": conversation.pk,
            "text": message.text,
            "html": message.html,
            "in_reply_to": last_in.external_id if last_in else "",
            "thread_id": last_in.thread_id if last_in else "",
            "to": {"kind": last_in.author_kind, "value": last_in.author_value} if last_in else None,
        },
    }


def send(channel: Channel, message) -> str:  # noqa: ANN001
    creds = channel.credentials
    url = str(creds.get("outbound_url", ""))
    if not url:
        raise TransportError("This webhook channel has no outbound URL.", permanent=True)
    secret = str(creds.get("outbound_secret") or creds.get("secret") or "")
    body = json.dumps(build(channel, message), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Rapport-Webhook/1",
        **signing.sign(secret, body),
    }
    headers["X-Rapport-Delivery"] = f"rapport-{message.pk}"
    status, data = net.safe_post(url, body, headers)
    if 200 <= status < 300:
        try:
            answer = json.loads(data or b"{}")
            external = answer.get("id") if isinstance(answer, dict) else None
        except ValueError:
            external = None
        return str(external or f"rapport-{message.pk}")[:300]
    raise TransportError(f"The endpoint answered HTTP {status}.", permanent=status in PERMANENT)
