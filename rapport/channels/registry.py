"""Channel kind → connector modules, imported lazily so one broken or heavy connector never
slows down or breaks the others (and a kind without a connector fails with a clear message)."""

from importlib import import_module
from types import ModuleType

from rapport.channels.models import ChannelKind

# Each entry names the package of a connector; it holds `inbound.py` (normalise) and
# `transport.py` (send). Add a line here when adding a connector (docs/adding-a-connector.md).
CONNECTORS: dict[str, str] = {
    ChannelKind.WEBHOOK: "rapport.channels.connectors.webhook",
    ChannelKind.EMAIL: "rapport.channels.connectors.email",
    ChannelKind.CHAT: "rapport.channels.connectors.chat",
    ChannelKind.X: "rapport.channels.connectors.x",
    ChannelKind.MASTODON: "rapport.channels.connectors.mastodon",
    ChannelKind.BLUESKY: "rapport.channels.connectors.bluesky",
    ChannelKind.FACEBOOK: "rapport.channels.connectors.facebook",
    ChannelKind.INSTAGRAM: "rapport.channels.connectors.instagram",
    ChannelKind.WHATSAPP: "rapport.channels.connectors.whatsapp",
    ChannelKind.SMS: "rapport.channels.connectors.twilio",
    ChannelKind.PHONE: "rapport.channels.connectors.twilio",
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
    if kind not in CONNECTORS:
        return False
    try:
        import_module(f"{CONNECTORS[kind]}.inbound")
    except ModuleNotFoundError:
        return False
    return True


def url_modules() -> list[str]:
    """The `urls` modules of installed connectors (webhook endpoints), for channels/urls.py."""
    found = []
    for package in dict.fromkeys(CONNECTORS.values()):
        try:
            import_module(f"{package}.urls")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(package):
                continue
            raise
        found.append(f"{package}.urls")
    return found
