"""Text, lists, numbers and on/off flags from the environment, read the same way by
the settings and gunicorn.conf.py (which runs before Django): a variable set but
empty (or spaces) is its default, whatever its kind; numbers are ASCII digits (and a
point, for a float), a flag's true/false, 1/0, yes/no or on/off; anything else, or a
number outside its range, is refused naming the variable. The
least value of a setting is the one below which it turns off what it protects (a
lock_timeout or a gunicorn timeout of 0 is none at all), and its most the one past
which it fails later (a lock_timeout past PostgreSQL's integers refused every
connection). `settings_or_exit` makes a setting refused at start one line, for
manage.py and the WSGI entry point."""

import os
import re
import sys


def env_text(name: str, default: str = "") -> str:
    """The variable's text without surrounding spaces, or `default` when it is unset or
    that leaves nothing (`HOST=` was every interface, `DJANGO_ALLOWED_HOSTS=` no host)."""
    return os.environ.get(name, "").strip() or default


def env_as_given(name: str, default: str = "") -> str:
    """The variable exactly as given, spaces and all, or `default` when it is blank: for
    a secret, whose surrounding spaces are part of it (a key read from a file ending in
    a newline changed, and every session with it, when it was stripped)."""
    return os.environ[name] if env_text(name) else default


def env_setdefault(name: str, value: str) -> None:
    """os.environ.setdefault, a blank value taken as unset (`DJANGO_SETTINGS_MODULE=`
    kept the empty text, and Django found no settings)."""
    if not env_text(name):
        os.environ[name] = value


def env_list(name: str, default: list[str]) -> list[str]:
    """Comma-separated text, each entry stripped, empty ones left out; `default` when
    that leaves none."""
    return [entry.strip() for entry in env_text(name).split(",") if entry.strip()] or default


def env_required(name: str, where: str) -> str:
    """The variable's text, or ValueError naming it when it is unset or empty (an empty
    DATABASE_URL fell back to a development default)."""
    if not (text := env_text(name)):
        raise ValueError(f"{name} is required {where}.")
    return text


# At most 18 digits: every setting's range is far below, and Python refuses to read an
# integer of over 4,300 digits (a message naming no variable) or reads 400 nines as inf.
PATTERNS = {int: re.compile(r"[0-9]{1,18}"), float: re.compile(r"[0-9]{1,18}(\.[0-9]{1,18})?")}


def env_number(name: str, default, *, minimum, maximum=None, cast=int):
    """The variable's number, or ValueError with a message that names it."""
    text = env_text(name)
    if not text:
        return default
    return number(name, text, minimum=minimum, maximum=maximum, cast=cast)


def number(name: str, text: str, *, minimum, maximum=None, cast=int):
    """`text` as a number from `minimum` to `maximum`, or ValueError naming `name`."""
    if not PATTERNS[cast].fullmatch(text) or cast(text) < minimum:
        raise ValueError(f"{name}: {text!r} is not a number of at least {minimum}.")
    value = cast(text)
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: {text!r} is more than {maximum}.")
    return value


FLAGS = {"true": True, "1": True, "yes": True, "on": True,
         "false": False, "0": False, "no": False, "off": False}  # fmt: skip


def env_flag(name: str, default: bool) -> bool:
    """The variable as on or off, or ValueError naming it: a value read as "off"
    whatever it said (`WEBHOOK_REQUIRE_HTTPS=enabled`) turned a safeguard off."""
    text = env_text(name)
    if not text:
        return default
    try:
        return FLAGS[text.lower()]
    except KeyError:
        message = f"{name}: {text[:40]!r} is not one of true/false, 1/0, yes/no, on/off."
        raise ValueError(message) from None


def settings_or_exit(program: str) -> None:
    """Read Django's settings now: a variable they refuse ends `program` with one line
    naming it (ImproperlyConfigured's message), not a traceback."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018  reading a setting loads them all
    except ImproperlyConfigured as exc:
        sys.exit(f"{program}: {exc}")
    except ModuleNotFoundError as exc:
        module = os.environ["DJANGO_SETTINGS_MODULE"]
        if exc.name is None or not (module == exc.name or module.startswith(f"{exc.name}.")):
            raise  # a module the settings import, not the settings themselves
        sys.exit(
            f"{program}: DJANGO_SETTINGS_MODULE: no module {module!r} (omnitron.settings.dev, "
            "omnitron.settings.test or omnitron.settings.production)."
        )
