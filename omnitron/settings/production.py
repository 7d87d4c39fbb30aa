"""Production: every secret and host comes from the environment; no development defaults.
Passes `manage.py check --deploy` given DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS and
DATABASE_URL (each required)."""

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from omnitron.env import env_as_given, env_list

from .base import *  # noqa: F403
from .readers import env_flag, env_number, env_required

DEBUG = False  # whatever DJANGO_DEBUG says
env_required("DJANGO_SECRET_KEY")  # fails fast when missing or blank
SECRET_KEY = env_as_given("DJANGO_SECRET_KEY")
# Django's own bar for a key (`check --deploy`, security.W009), which only warned: a
# short or guessable key signs admin sessions anyone could forge.
if (len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
        or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX)):  # fmt: skip
    raise ImproperlyConfigured(
        f"DJANGO_SECRET_KEY: at least {SECRET_KEY_MIN_LENGTH} characters, "
        f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them different, and not Django's "
        f"{SECRET_KEY_INSECURE_PREFIX}... one "
        "(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
# Required too: base's default, the local cluster of `make run`, is for development
# (a missing variable failed at the first request, against 127.0.0.1).
env_required("DATABASE_URL")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:  # none would refuse every request
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is required with the production settings.")

# TLS is terminated by the load balancer, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_flag("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_number("DJANGO_SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
