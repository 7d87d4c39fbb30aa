"""WSGI entry point for gunicorn. DJANGO_SETTINGS_MODULE picks the settings
(the Dockerfile sets production; `make run` sets dev)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnitron.settings.production")

application = get_wsgi_application()
