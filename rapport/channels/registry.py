"""Channel kind → connector modules, imported lazily so one broken or heavy connector never
slows down or breaks the others (and a kind without a connector fails with a clear message)."""

from importlib import import_module
from types import ModuleType

from rapport.channels.models import ChannelKind

# Each entry names the package of a connector; it holds `inbound.py` (normalise) and
# `transport.py` (send). Add a line here when adding a connector (docs/adding-a-connector.md).
CONNECTORS: dict[str, str] = {
    ChannelKind.WEBHOOK: "rapport.channels.connectors.webhook",
}


class ConnectorMissing(LookupError):
    pass


def _module(kind: str, part: str) -> ModuleType:
    package = CONNECTORS.get(kind)
    if package is None:
        raise ConnectorMissing(f"No connector is installed for channel kind {kind!r}.")
    return import_module(f"{package}.{part}")


def inbound(kind: str) -> ModuleType:
    return _module(kind, "inbound")


def transport(kind: str) -> ModuleType:
    return _module(kind, "transport")


def has_connector(kind: str) -> bool:
    return kind in CONNECTORS
