"""Source kind → its poller, imported only when used."""

from importlib import import_module

from rapport.listening.models import ListeningSource
from rapport.listening.sources.base import Poller

MODULES = {
    "rss": "rss.poller",
    "mastodon": "mastodon.poller",
    "x": "x.poller",
    "x_stream": "x.stream",
    "bluesky": "bluesky.poller",
    "reddit": "reddit.poller",
}
KINDS = tuple(MODULES)


def poller_for(source: ListeningSource) -> Poller:
    if source.kind not in MODULES:
        raise LookupError(f"No poller for source kind {source.kind!r}.")
    module = import_module(f"rapport.listening.sources.{MODULES[source.kind]}")
    return module.Poller(source)
