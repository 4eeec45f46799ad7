"""Outbound SMS: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form: To, From or
MessagingServiceSid, Body, StatusCallback), basic auth with the account SID and auth token.
A phone channel answers by SMS from the same number (a call cannot carry text), which is the
channel hop voice → SMS. 401/403 (and Twilio error 20003, authentication) disable the
channel; 429/5xx are retried."""

import base64
from typing import Any

from rapport.channels.connectors.meta import http
from rapport.channels.models import Channel

API = "https://api.twilio.com"


def send(channel: Channel, message: Any) -> str:
    creds = channel.credentials
    sid, token = str(creds.get("account_sid", "")), str(creds.get("auth_token", ""))
    if not sid or not token:
        raise http.ApiError("This Twilio channel has no account SID or auth token.", permanent=True)
    last = message.conversation.messages.filter(direction="inbound", channel=channel).order_by("-id").first()
    to = last.author_value if last is not None else ""
    if not to:
        raise http.ApiError("Nothing to answer: the conversation has no SMS or call from a number.")
    form = {"To": to, "Body": message.text[:1600]}
    if creds.get("messaging_service_sid"):
        form["MessagingServiceSid"] = str(creds["messaging_service_sid"])
    elif creds.get("from_number"):
        form["From"] = str(creds["from_number"])
    else:
        raise http.ApiError("This Twilio channel has no from_number.", permanent=True)
    base_url = str((channel.settings or {}).get("public_url", "")).rstrip("/")
    if base_url:
        form["StatusCallback"] = f"{base_url}/hooks/sms/{channel.pk}/status/"
    auth = base64.b64encode(f"{sid}:{token}".encode()).decode()
    api = str((channel.settings or {}).get("api_url") or API).rstrip("/")
    resp = http.request(
        "POST",
        f"{api}/2010-04-01/Accounts/{sid}/Messages.json",
        form=form,
        headers={"Authorization": f"Basic {auth}"},
    )
    answer = http.check(resp, "Twilio")
    return str((answer or {}).get("sid") or f"rapport-{message.pk}")[:300]
