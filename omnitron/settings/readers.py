"""How the settings read the environment: omnitron/env.py's readers (shared with
gunicorn.conf.py, which runs before Django), and the readers of the settings' own
kinds (a PostgreSQL URL, a retry schedule, DRF's rates, a logging level), each
refusal an ImproperlyConfigured that names the variable and stops the app at start.
Lower-case names are helpers; MAX_RETRIES and MAX_RETRY_DELAY are settings too
(base.py takes them), which a subscription's own schedule is checked against."""

import re
from urllib.parse import unquote, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from omnitron import env as variables
from omnitron.env import env_text

env = environ.Env()


# PostgreSQL's integer settings (lock_timeout, statement_timeout) hold at most this.
pg_int_max = 2**31 - 1


def env_number(name: str, default, *, minimum, maximum=None, cast=int):
    """A number from the environment (omnitron/env.py); one it refuses stops the
    app at start, naming the variable: DB_LOCK_TIMEOUT_MS=0 was no lock timeout at all,
    DB_CONNECT_TIMEOUT=0 waited for a connection forever, WORKER_CONCURRENCY=0 ran no
    delivery."""
    try:
        return variables.env_number(name, default, minimum=minimum, maximum=maximum, cast=cast)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def env_required(name: str) -> str:
    """Text the production settings cannot do without; unset or empty stops the app at
    start, naming it."""
    try:
        return variables.env_required(name, "with the production settings")
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


def env_flag(name: str, default: bool) -> bool:
    """On or off (omnitron/env.py); anything else stops the app at start."""
    try:
        return variables.env_flag(name, default)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


log_levels = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def env_log_level(name: str, default: str) -> str:
    """A logging level's name, in any case of ASCII (logging failed to start on another;
    `ınfo`, a dotless i, is INFO in upper case)."""
    text = env_text(name)
    if not text:
        return default
    level = text.upper() if text.isascii() else text
    if level not in log_levels:
        raise ImproperlyConfigured(f"{name}: {text[:40]!r} is not one of {', '.join(log_levels)}.")
    return level


postgres_schemes = ("postgres", "postgresql", "pgsql")


def env_database(name: str, default: str = "", default_from: str = "") -> dict:
    """A PostgreSQL URL, postgres://user:password@host:port/name, as Django's database
    settings; `default` (made from the variables `default_from` names) when unset or
    empty. Another scheme was tried as PostgreSQL; one without a database name
    started, then failed every read (a replica's) or a command with a traceback; a
    port that is not one, a host given as a socket path, failed naming no variable."""
    given = env_text(name)
    url, source = (given, name) if given else (default, default_from or name)
    usage = f"{source}: not a PostgreSQL URL (postgres://user:password@host:port/name)."
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when it is not a number from 0 to 65535
    except ValueError:
        raise ImproperlyConfigured(usage) from None
    database = unquote(parts.path.removeprefix("/"))
    if (parts.scheme.lower() not in postgres_schemes or not parts.hostname
            or "%" in parts.netloc.rpartition("@")[2] or port == 0
            or not database or "/" in database):  # fmt: skip
        raise ImproperlyConfigured(usage)
    return env.db_url_config(parts._replace(scheme=parts.scheme.lower()).geturl())


def env_milliseconds(name: str, default: int) -> int:
    """A PostgreSQL timeout: 0 would turn it off, and more than an integer is refused."""
    return env_number(name, default, minimum=1, maximum=pg_int_max)


# A retry schedule: at most this many delays, each 1 s to a week (as a subscription's
# own in the admin): 300000000000 s failed to record the attempt (a date past 9999).
MAX_RETRIES = 30
MAX_RETRY_DELAY = 7 * 24 * 3600


def env_delays(name: str, default: list[int]) -> list[int]:
    """Seconds, comma-separated; set but empty is the default (an empty list was no
    retry at all)."""
    text = env_text(name)
    if not text:
        return default
    parts = [part.strip() for part in text.split(",")]
    try:
        if len(parts) > MAX_RETRIES:
            raise ValueError
        return [variables.number(name, part, minimum=1, maximum=MAX_RETRY_DELAY) for part in parts]
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}: {text[:100]!r} is not up to {MAX_RETRIES} delays of 1 to "
            f"{MAX_RETRY_DELAY} seconds, comma-separated."
        ) from None


rate_pattern = re.compile(r"[0-9]{1,9}/(s|sec|second|m|min|minute|h|hour|d|day)")


def throttle_rates(defaults: dict[str, str]) -> dict[str, str | None]:
    """DRF's rates ("<count>/<s|min|hour|day>"), each from its THROTTLE_<SCOPE>_RATE
    variable; "off" is no limit. Counted in PostgreSQL by every process and node
    (omnitron/api/throttling.py). Anything else stops the app at start: DRF reads a
    rate at the first request it limits (`abc` answered every capture 500) and only the
    period's first letter (`2/month` was 2 a minute)."""
    rates = {}
    for scope, default in defaults.items():
        name = f"THROTTLE_{scope.upper()}_RATE"
        rate = env_text(name, default)
        if rate.lower() == "off":
            rates[scope] = None
        elif rate_pattern.fullmatch(rate):
            rates[scope] = rate
        else:
            raise ImproperlyConfigured(
                f"{name}: {rate!r} is not <count>/<s|min|hour|day>, nor off."
            )
    return rates
