"""The test suite: the development settings (static files from the apps, webhook
receivers on loopback over plain HTTP, the demo data), against a throwaway PostgreSQL
from scripts/test.sh (DATABASE_URL), with what tests need besides."""

from omnitron.env import env_text

from .dev import *  # noqa: F403
from .readers import env_milliseconds, env_number

SECRET_KEY = "test-only-insecure-key"
DEBUG = False
ALLOWED_HOSTS = ["*"]

# Fast hashing: tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The primary, and the read replica when DATABASE_REPLICA_URL is set.
for _alias, _database in DATABASES.items():  # noqa: F405
    _database["CONN_MAX_AGE"] = env_number("DJANGO_CONN_MAX_AGE", 0, minimum=0)
    # Shorter lock waits keep the lock-timeout tests quick.
    _options = database_options(  # noqa: F405
        lock_timeout_ms=env_milliseconds("DB_LOCK_TIMEOUT_MS", 2000),
        statement_timeout_ms=env_milliseconds("DB_STATEMENT_TIMEOUT_MS", 15000),
    )
    _database["OPTIONS"] = with_url_options(_options, url_options[_alias])  # noqa: F405

# No rate limits unless a test asks for them (tests send bursts on purpose).
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = throttle_rates(  # noqa: F405
    {
        "login_address": "off",
        "login_username": "off",
        "capture": "off",
        "read": "off",
        "export": "off",
        "mark": "off",
    }  # fmt: skip
)

# A live server under test may serve a URLconf of the tests' own (a view that fails).
ROOT_URLCONF = env_text("DJANGO_ROOT_URLCONF", ROOT_URLCONF)  # noqa: F405
