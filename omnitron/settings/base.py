"""Settings shared by every environment. Anything that differs between machines
comes from the environment (see docs/configuration.md)."""

import ipaddress
import os
from pathlib import Path
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured

from omnitron.env import env_list, env_text

# Numbers, flags and required text through .readers, whose refusals are
# ImproperlyConfigured (manage.py and the WSGI entry say them in one line):
# omnitron.env's own raise ValueError, a traceback here.
from .readers import (
    MAX_RETRIES,  # noqa: F401  a setting: a subscription's schedule is checked against it
    MAX_RETRY_DELAY,  # noqa: F401  the same
    env_database,
    env_delays,
    env_flag,
    env_log_level,
    env_milliseconds,
    env_number,
    pg_int_max,
    throttle_rates,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent


DEBUG = env_flag("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "omnitron.apps.AdminConfig",  # django.contrib.admin with omnitron.admin.site.AdminSite
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "procrastinate.contrib.django",
    "omnitron.api",
    "accounts",
    "orders",
    "events",
    "capture",
]

MIDDLEWARE = [
    "omnitron.api.middleware.UnreadBodyMiddleware",
    "omnitron.observability.RequestLogMiddleware",
    "omnitron.api.middleware.HeadMiddleware",
    "omnitron.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Under SecurityMiddleware, whose headers every answer has, and above the session
    # and the user: a refused request reads nothing from the database.
    "omnitron.api.middleware.QueueTimeMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "omnitron.api.middleware.CommonMiddleware",  # sets Content-Length on what is below
    "omnitron.api.middleware.BodySizeMiddleware",
    "omnitron.api.middleware.MethodCheckMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "omnitron.db.middleware.DatabaseErrorMiddleware",
]

ROOT_URLCONF = "omnitron.urls"
WSGI_APPLICATION = "omnitron.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "omnitron" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_options(*, lock_timeout_ms: int, statement_timeout_ms: int) -> dict:
    """Connection options: no request waits forever on a lock or a statement, and
    psycopg binds parameters on the server and prepares a statement the fifth time a
    connection runs it, so the hot ones are planned once per connection
    (DB_PREPARED_STATEMENTS=0 turns that off, for PgBouncer in transaction mode).
    DB_TIMEOUTS_ON_ROLE=1 leaves the timeouts to the database role (ALTER ROLE ... SET):
    PgBouncer refuses the `options` startup parameter that carries them otherwise."""
    options = {
        "connect_timeout": env_number("DB_CONNECT_TIMEOUT", 3, minimum=1, maximum=pg_int_max),
        # client_connection_check_interval: a statement waiting on a lock notices within
        # a second that its app process is gone, and ends: a capture whose worker was
        # killed while it waited (gunicorn's timeout, a deploy) committed a second later,
        # after the client had been told the app was not reached.
        # jit=off: PostgreSQL's JIT compiles a large statement's expressions, and no
        # timeout or cancel stops that (an admin search of 800 words over 200,000
        # customers ran 37 s past a 2 s statement_timeout); this app's statements are
        # short and read by index, where JIT never pays off.
        "options": (
            f"-c lock_timeout={lock_timeout_ms} -c statement_timeout={statement_timeout_ms} "
            "-c client_connection_check_interval=1000 -c jit=off"
        ),
        "application_name": "omnitron-capture",
        "server_side_binding": True,
        "prepare_threshold": 5 if env_flag("DB_PREPARED_STATEMENTS", True) else None,
    }
    if env_flag("DB_TIMEOUTS_ON_ROLE", False):
        del options["options"]
    return options


def with_url_options(app_options: dict, url_options: dict) -> dict:
    """The connection options with a database URL's query parameters (libpq's:
    `sslmode`, `sslrootcert`, `connect_timeout`, ...), which win; the URL's `options`
    come after the app's, so a `-c` setting of the URL's wins too."""
    merged = {**app_options, **url_options}
    if "options" in app_options and "options" in url_options:
        merged["options"] = f"{app_options['options']} {url_options['options']}"
    return merged


# The local cluster of scripts/pg.sh is the default, on its PG_PORT and PG_DATABASE as
# `make run` starts it (a command run beside `make run PG_PORT=...` found nothing on
# 54329); DATABASE_URL points anywhere else.
local_cluster = (
    f"postgres://postgres@127.0.0.1:{env_number('PG_PORT', 54329, minimum=1, maximum=65535)}/"
    f"{quote(env_text('PG_DATABASE', 'omnitron'), safe='')}"
)
DATABASES = {"default": env_database("DATABASE_URL", local_cluster, "PG_DATABASE")}
# Each database's URL's query parameters (the test settings set the options again).
url_options = {"default": DATABASES["default"].get("OPTIONS", {})}
_app_options = database_options(
    lock_timeout_ms=env_milliseconds("DB_LOCK_TIMEOUT_MS", 3000),
    statement_timeout_ms=env_milliseconds("DB_STATEMENT_TIMEOUT_MS", 15000),
)
DATABASES["default"].update(
    {
        # Django's PostgreSQL backend, reconnecting once when a request's first statement
        # finds its reused connection dead (omnitron/db/base.py): no `SELECT 1` health
        # check round trip per request, and a restarted database costs no failed request.
        "ENGINE": "omnitron.db",
        "CONN_MAX_AGE": env_number("DJANGO_CONN_MAX_AGE", 60, minimum=0),
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": with_url_options(_app_options, url_options["default"]),
    }
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# `manage.py load_demo` (a superuser demo / demo of every channel): the development and
# test settings allow it; any other, a shop's own module included, does not.
DEMO_DATA_ALLOWED = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.passwords.MaximumLengthValidator"},  # what the API's login takes
]

LANGUAGE_CODE = "en-us"
# The only language: the API's messages and its schema are in English (the schema's
# ?lang= takes only these).
LANGUAGES = [("en", "English")]
TIME_ZONE = "UTC"
# Dates in the admin with seconds and time zone (omnitron/formats/en/formats.py).
FORMAT_MODULE_PATH = ["omnitron.formats"]
USE_I18N = True
USE_TZ = True

# The admin's messages stay on the server, in the session: Django's default kept them in
# a cookie, signed but readable, and a new webhook subscription's secret, "shown once",
# went out in it (and into any log of Cookie headers).
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
# Where a login lands when its `next` is refused (another site's): the admin, not a 404.
LOGIN_REDIRECT_URL = "/admin/"

STATIC_URL = "static/"
STATIC_ROOT = Path(env_text("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["omnitron.api.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "omnitron.api.renderers.ContentNegotiation",
    "DEFAULT_METADATA_CLASS": "omnitron.api.metadata.Metadata",
    "DEFAULT_PARSER_CLASSES": ["omnitron.api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "omnitron.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Decimals are JSON numbers, as in the seed ("type": "number", "format": "decimal").
    "COERCE_DECIMAL_TO_STRING": False,
    "UNAUTHENTICATED_USER": None,
}


# Login per client address and per username; per user: captures, reads (the lists,
# their pages and details, the event feed), CSV exports and the ERP's PATCH. Without
# the last three, one token's legal requests took every worker (outside tests: 30
# exports at once, 504s for everyone else; 128 event pages of 500 at once, 10 s; a
# loop of PATCHes, four of five workers).
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = throttle_rates(
    {
        "login_address": "30/min",
        "login_username": "10/min",
        "capture": "6000/min",
        "read": "20/s",  # a page of 500 rows counts as 10, 256 KB answered as 1 (api/throttling.py)
        "export": "2/min",
        "mark": "50/s",  # the ERP's PATCH of an order
    }
)
# Logins checking a password at once, across every app process on the database: a
# check (PBKDF2) costs a large share of a second of CPU, so a burst of logins under the
# rates above could otherwise take every worker. One more answers 503 logins_busy.
LOGIN_CONCURRENCY = env_number("LOGIN_CONCURRENCY", 2, minimum=1, maximum=1024)
# Proxies in front of the app that append to X-Forwarded-For (for the client address).
# 0: the connection's address. (DRF's own default, None, takes the whole header a
# client sends: each made-up address would get its own login limit.)
REST_FRAMEWORK["NUM_PROXIES"] = env_number("API_NUM_PROXIES", 0, minimum=0)

# Largest request body read (Django's own limit); larger is 413 request_too_large.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_number("API_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1)

# Everything the app logs is JSON, one object per line on stderr (omnitron/observability.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "omnitron.observability.JSONFormatter"}},
    "filters": {
        "refusals_are_warnings": {"()": "omnitron.observability.RefusalsAreWarnings"},
        "lost_database_is_a_warning": {"()": "events.logfilters.LostDatabaseIsAWarning"},
        "stalled_job_end_is_a_warning": {"()": "events.logfilters.StalledJobEndIsAWarning"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": [
                "refusals_are_warnings",
                "lost_database_is_a_warning",
                "stalled_job_end_is_a_warning",
            ],
        }
    },
    "root": {"handlers": ["console"], "level": env_log_level("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        # Requests are logged once, by omnitron.request: Django keeps only its errors.
        "django.request": {"level": "ERROR"},
        # The task queue says a lot at start-up and per job.
        "procrastinate": {"level": env_log_level("PROCRASTINATE_LOG_LEVEL", "WARNING")},
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Omnitron API",
    "DESCRIPTION": (
        "Order capture of Omnitron, Akinon's back office: capture the items of a "
        "pre-authorised order that were really shipped, picked or weighed. "
        "Authorize with `Token <key>`; get a key from `POST /api/v1/auth/login/`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs need no login and work offline: Swagger UI and Redoc are served
    # from this app (drf-spectacular-sidecar), never from a CDN.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "displayOperationId": False},
    "ENUM_NAME_OVERRIDES": {
        "ShippingCompany": "orders.enums.ShippingCompany",
        "OrderStatus": "orders.enums.OrderStatus",
        "Currency": "orders.enums.Currency",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "omnitron.api.schema.seed_component_names",
        "omnitron.api.schema.query_parameters_may_be_empty",
        "orders.schema.enum_member_names",
        "omnitron.api.schema.response_headers",
        "capture.schema.capture_request_limits",
        "events.schema.webhook_components",
    ],
}

# Webhooks (events/). Production refuses http:// and targets on non-public addresses;
# development settings allow both, for a receiver on this machine.
WEBHOOK_REQUIRE_HTTPS = env_flag("WEBHOOK_REQUIRE_HTTPS", True)
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_flag("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)
# Seconds before each retry; after the last, a delivery has failed (about 31 hours).
WEBHOOK_RETRY_SCHEDULE = env_delays("WEBHOOK_RETRY_SCHEDULE", [5, 30, 120, 600, 3600, 21600, 86400])
WEBHOOK_TIMEOUT_SECONDS = env_number(
    "WEBHOOK_TIMEOUT_SECONDS", 10, minimum=0.1, maximum=3600, cast=float
)
# A worker without a heartbeat for this long is dead; its jobs run again elsewhere.
WEBHOOK_STALLED_SECONDS = env_number("WEBHOOK_STALLED_SECONDS", 30, minimum=3, maximum=86400)

# The worker: `python manage.py webhook_worker` (make run starts one). Each job slot is a
# thread and a database connection: more than this is a mistake, not a setting.
MAX_WORKER_CONCURRENCY = 256
PROCRASTINATE_WORKER_DEFAULTS = {
    "concurrency": env_number("WORKER_CONCURRENCY", 8, minimum=1, maximum=MAX_WORKER_CONCURRENCY),
    "update_heartbeat_interval": max(1, WEBHOOK_STALLED_SECONDS / 3),
    "stalled_worker_timeout": WEBHOOK_STALLED_SECONDS,
    # New jobs arrive by LISTEN/NOTIFY at once; retries scheduled for later are
    # found by polling, this often.
    "fetch_job_polling_interval": 1.0,
    # Finished jobs go; every delivery and attempt is kept in events' own tables.
    "delete_jobs": "successful",
}
# Each running job gets a thread of its own (events/worker.py).
PROCRASTINATE_ON_APP_READY = "events.worker.on_app_ready"

# Prometheus metrics (omnitron/metrics.py): GET /metrics on the app's own port, only to
# these addresses (the proxy never forwards /metrics). With PROMETHEUS_MULTIPROC_DIR
# set (make run, Docker), every gunicorn worker and the webhook worker are counted.
METRICS_ENABLED = env_flag("METRICS_ENABLED", True)
# Set but empty is unset, as every variable: prometheus_client, which reads it when
# imported, wrote its sample files to the working directory.
METRICS_MULTIPROCESS = bool(env_text("PROMETHEUS_MULTIPROC_DIR"))
if not METRICS_MULTIPROCESS:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
# Addresses or networks (172.16.0.0/12: a compose network's scraper).
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
for _entry in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_entry, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {_exc}") from None

# Error tracking (omnitron/error_tracking.py): off unless SENTRY_DSN is set.
SENTRY_DSN = env_text("SENTRY_DSN")
if SENTRY_DSN:
    from omnitron import error_tracking

    error_tracking.init(dsn=SENTRY_DSN, environment=env_text("SENTRY_ENVIRONMENT", "production"))

# Read replica (omnitron/db/router.py): with DATABASE_REPLICA_URL set, the read endpoints
# read from it; everything else stays on the primary. After a failure to reach it,
# reads go to the primary for DB_REPLICA_RETRY_SECONDS (docs/scaling.md).
DB_REPLICA_RETRY_SECONDS = env_number("DB_REPLICA_RETRY_SECONDS", 5, minimum=0, cast=float)
if env_text("DATABASE_REPLICA_URL"):
    _replica = env_database("DATABASE_REPLICA_URL")
    url_options["replica"] = _replica.get("OPTIONS", {})
    DATABASES["replica"] = {  # the primary's engine and options, the replica's address
        **DATABASES["default"],
        **{key: _replica[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")},
        "OPTIONS": with_url_options(_app_options, url_options["replica"]),
        "TEST": {"MIRROR": "default"},
    }
    DATABASE_ROUTERS = ["omnitron.db.router.ReplicaRouter"]
