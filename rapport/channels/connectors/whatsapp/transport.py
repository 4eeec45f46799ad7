"""WhatsApp replies: `POST /{phone-number-id}/messages` with
`{"messaging_product": "whatsapp", "to": <wa_id>, "type": "text", "text": {"body": …}}`,
quoting the customer's last message (`context.message_id`). Credentials: `access_token`,
`phone_number_id`. Outside the 24-hour customer-service window WhatsApp refuses free text
(error 131047); that is reported on the message, not held against the channel."""

from typing import Any

from rapport.channels.connectors.facebook.transport import last_inbound
from rapport.channels.connectors.meta import graph, http
from rapport.channels.models import Channel


def send(channel: Channel, message: Any) -> str:
    creds = channel.credentials
    token, phone_id = str(creds.get("access_token", "")), str(creds.get("phone_number_id", ""))
    if not phone_id:
        raise http.ApiError("This WhatsApp channel has no phone_number_id.", permanent=True)
    last = last_inbound(message)
    if last is None:
        raise http.ApiError("Nothing to answer: the conversation has no WhatsApp message.")
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": last.author_value.lstrip("+"),
        "type": "text",
        "text": {"preview_url": False, "body": message.text[:4096]},
    }
    if last.external_id:
        body["context"] = {"message_id": last.external_id}
    answer = graph.post(channel, f"{phone_id}/messages", body, token, "WhatsApp")
    ids = (answer or {}).get("messages") if isinstance(answer, dict) else None
    if isinstance(ids, list) and ids and isinstance(ids[0], dict) and ids[0].get("id"):
        return str(ids[0]["id"])[:300]
    return f"rapport-{message.pk}"
