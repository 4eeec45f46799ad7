import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")
application = get_wsgi_application()

# Load every URL module (the API's schemas included) now, not on each worker's first request,
# so that they are among what is frozen below.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018

# Move everything loaded so far (Django, the apps, their modules) out of the garbage
# collector's sight: a full collection otherwise walks all of it and paused a worker for
# ~50 ms every few hundred requests, which is what the slowest requests at 16 concurrent
# clients were waiting on. What requests allocate is still collected as usual.
gc.collect()
gc.freeze()
