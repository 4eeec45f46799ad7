from rapport.channels.connectors.meta.views import make_view
from rapport.channels.models import ChannelKind

receive = make_view(ChannelKind.INSTAGRAM)
