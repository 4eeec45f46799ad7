import pytest

from rapport.listening import http
from rapport.listening.testing import FakeWeb


@pytest.fixture
def web(settings):
    """A fake network; the SSRF guard is off because fake hosts do not resolve."""
    settings.RAPPORT_LISTENING_ALLOW_PRIVATE = True
    fake = FakeWeb()
    previous = http.set_transport(fake)
    yield fake
    http.set_transport(previous)
