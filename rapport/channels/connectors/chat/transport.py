"""Web chat outbound: nothing to call. The widget polls for agent replies, so "sending" only
marks the message deliverable; the poll endpoint shows outbound chat messages once sent."""

from rapport.channels.models import Channel


def send(channel: Channel, message) -> str:  # noqa: ANN001 - conversations.Message
    return f"chat-out-{message.pk}"
