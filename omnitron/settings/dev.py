"""Local development: `make run`. DEBUG stays off unless DJANGO_DEBUG=1, so the
admin's static files are served by whitenoise exactly as in production."""

from omnitron.env import env_as_given

from .base import *  # noqa: F403
from .readers import env_flag

SECRET_KEY = env_as_given("DJANGO_SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production")

# A webhook receiver on this machine, over plain HTTP, is fine in development.
WEBHOOK_REQUIRE_HTTPS = env_flag("WEBHOOK_REQUIRE_HTTPS", False)
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_flag("WEBHOOK_ALLOW_PRIVATE_TARGETS", True)

# Serve static files straight from the apps: no collectstatic needed locally.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None  # nothing collected locally
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

DEMO_DATA_ALLOWED = True  # manage.py load_demo (make run)
