"""`rapport poll_channels`: poll every active channel whose connector has a `poller` module
(X mentions fallback, Mastodon, Bluesky). Email has its own `poll_email`. Run by
`rapport scheduler` every minute; safe to overlap (pollers claim their channel)."""

import logging
from importlib import import_module

from django.core.management.base import BaseCommand
from django.utils import timezone

from rapport.channels.base import TransportError
from rapport.channels.models import Channel, ChannelKind, ChannelStatus
from rapport.channels.registry import CONNECTORS

log = logging.getLogger("rapport.channels.poll")

POLLED_KINDS = [ChannelKind.X, ChannelKind.MASTODON, ChannelKind.BLUESKY]


def poll_channel(channel: Channel) -> int:
    """Poll one channel; a permanent failure (revoked token) puts the channel in error so an
    admin sees it on the channels page, a transient one is only logged and retried next run."""
    poller = import_module(f"{CONNECTORS[channel.kind]}.poller")
    try:
        count = int(poller.poll(channel) or 0)
    except TransportError as exc:
        status = ChannelStatus.ERROR if exc.permanent else channel.status
        Channel.objects.filter(pk=channel.pk).update(
            status=status, last_error=str(exc)[:500], last_error_at=timezone.now()
        )
        log.warning(
            "polling channel %s failed (%s): %s",
            channel.pk,
            "permanent" if exc.permanent else "transient",
            exc,
        )
        return 0
    return count


class Command(BaseCommand):
    help = "Poll the channels whose platforms are polled rather than pushing webhooks."

    def add_arguments(self, parser):
        parser.add_argument("--channel", type=int, help="Only this channel id.")

    def handle(self, *args, **opts):
        channels = Channel.objects.filter(kind__in=POLLED_KINDS, status=ChannelStatus.ACTIVE).order_by("pk")
        if opts.get("channel"):
            channels = channels.filter(pk=opts["channel"])
        total = 0
        for channel in channels:
            if channel.is_demo:  # no real account behind it
                continue
            try:
                total += poll_channel(channel)
            except Exception:  # one broken channel must not stop the others
                log.exception("polling channel %s crashed", channel.pk)
                Channel.objects.filter(pk=channel.pk).update(
                    last_error="poller crashed; see the logs", last_error_at=timezone.now()
                )
        self.stdout.write(f"polled {channels.count()} channels, {total} new items")
