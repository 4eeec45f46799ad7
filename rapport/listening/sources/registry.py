"""Source kind → its poller, imported only when used."""

from importlib import import_module

from rapport.listening.models import ListeningSource
from rapport.listening.sources.base import Poller

KINDS = ("rss", "mastodon", "x", "bluesky", "reddit")


def poller_for(source: ListeningSource) -> Poller:
    if source.kind not in KINDS:
        raise LookupError(f"No poller for source kind {source.kind!r}.")
    module = import_module(f"rapport.listening.sources.{source.kind}.poller")
    return module.Poller(source)
