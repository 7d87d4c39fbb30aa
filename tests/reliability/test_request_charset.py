"""The `charset` a request's Content-Type names, over real HTTP: the query string (and
a form's body) is read as UTF-8 whatever it says (omnitron/charset.py). Django read
both with the named codec, and a header alone made requests at any URL a 500."""

import pytest
import requests
from django.contrib.auth.models import User
from django.test import Client

from tests.live import gunicorn
from tests.reliability.helpers import seed, token_for

pytestmark = pytest.mark.django_db(transaction=True)

# Codecs Python has but no text encoding (or one that fails as no decoder should):
# Django took each for the request's encoding and failed building the request itself.
NOT_TEXT = ["rot13", "base64", "hex", "zlib", "bz2", "uu_codec", "quopri", "punycode",
            "undefined"]  # fmt: skip


def get(base, path, charset, **headers):
    return requests.get(
        f"{base}{path}", headers={"Content-Type": f"text/plain; charset={charset}", **headers},
        timeout=10,
    )  # fmt: skip


def test_a_charset_that_is_no_text_encoding_is_ignored_at_every_url():
    """With any query string, gunicorn's bare 500 and no line in the request log."""
    token = token_for("wms", all_channels=True)
    auth = {"Authorization": f"Token {token}"}
    with gunicorn(workers=1) as (base, _):
        answers = {
            (charset, path): get(base, path, charset, **auth)
            for charset in NOT_TEXT
            for path in ("/healthz?x=1", "/api/v1/orders/?page_size=1", "/api/schema/?lang=en")
        }
    assert {key: answer.status_code for key, answer in answers.items()} == dict.fromkeys(
        answers, 200
    )


def test_a_query_is_read_as_utf8_whatever_charset_is_named():
    """utf-7 read `%2B2AA-` as a lone surrogate, which the admin's search, filters and
    autocomplete handed to the database; ascii could not write back the event feed's
    `next` link with the U+FFFD it had read for `%C3%A9`. Each was a 500."""
    order = seed(orders=1, items=1, prefix="CHARSET")[0]
    token = token_for("wms", all_channels=True)
    admin = Client()
    admin.force_login(User.objects.create_superuser("boss", password="not-used-here"))
    session = {"Cookie": f"sessionid={admin.cookies['sessionid'].value}"}
    auth = {"Authorization": f"Token {token}"}
    with gunicorn(workers=1) as (base, _):
        captured = requests.post(
            f"{base}/api/v1/capture-order/", headers=auth, timeout=10,
            json={"order": order["number"], "order_items": [{"pk": order["items"][0]["pk"]}]},
        )  # fmt: skip
        assert captured.status_code == 200
        search = get(base, "/admin/orders/order/?q=%2B2AA-", "utf-7", **session)
        autocomplete = get(
            base, "/admin/autocomplete/?app_label=orders&model_name=order&field_name=customer"
            "&term=%2B2AA-", "utf-7", **session,
        )  # fmt: skip
        feed = get(base, "/api/v1/events/?page=%C3%A9", "ascii", **auth)
    assert search.status_code == 200
    assert "+2AA-" in search.text  # searched for as sent
    assert autocomplete.status_code == 200
    assert autocomplete.json()["results"] == []
    assert feed.status_code == 200
    assert "page=%C3%A9" in feed.json()["next"]  # the page parameter is taken and ignored


@pytest.mark.parametrize(
    "content_type",
    ["text/plain; a*=nosuch''%41", "text/plain; charset*=nosuch''x",
     "application/json; charset=utf-8; a*=idna''%FF", "text/plain; a*=punycode''%FF"],
)  # fmt: skip
def test_a_parameter_django_cannot_read_is_dropped_at_every_url(content_type):
    """An RFC 2231 parameter (`name*=codec''value`) naming no codec, or one failing on
    its value, raised in Django's reading of the Content-Type: a 500 at any URL."""
    with gunicorn(workers=1) as (base, _):
        answer = requests.get(f"{base}/healthz?x=1", headers={"Content-Type": content_type},
                              timeout=10)  # fmt: skip
    assert answer.status_code == 200
