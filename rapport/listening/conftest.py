import pytest

from rapport.listening.testing import FakeWeb, install


@pytest.fixture
def web(settings):
    """A fake network; the SSRF guard is off because fake hosts do not resolve."""
    settings.RAPPORT_LISTENING_ALLOW_PRIVATE = True
    fake = FakeWeb()
    install(fake)
    yield fake
    install(None)
