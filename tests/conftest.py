from urllib.parse import urlsplit

import pytest
import requests
from django.test.client import Client

from tests.contract import check_response
from tests.factories import ChannelFactory, make_api_user, make_order
from tests.helpers import client_for


@pytest.fixture(autouse=True)
def responses_match_the_schema(monkeypatch):
    """Every API answer in the suite is checked against the generated OpenAPI schema:
    the Django test client's, and those of live servers on loopback (requests)."""
    client_request = Client.request

    def checked_client_request(self, **request):
        response = client_request(self, **request)
        if not response.streaming:  # static files stream; the API never does
            check_response(
                response.request["REQUEST_METHOD"], response.request["PATH_INFO"],
                response.status_code, response.get("Content-Type", ""), response.content,
            )  # fmt: skip
        return response

    session_send = requests.Session.send

    def checked_send(self, prepared, **kwargs):
        response = session_send(self, prepared, **kwargs)
        url = urlsplit(prepared.url)
        if url.hostname == "127.0.0.1" and not kwargs.get("stream"):
            check_response(
                prepared.method, url.path, response.status_code,
                response.headers.get("Content-Type", ""), response.content,
            )  # fmt: skip
        return response

    monkeypatch.setattr(Client, "request", checked_client_request)
    monkeypatch.setattr(requests.Session, "send", checked_send)


@pytest.fixture
def channel(db):
    return ChannelFactory()


@pytest.fixture
def api_user(channel):
    return make_api_user(channels=[channel])


@pytest.fixture
def api_client(api_user):
    return client_for(api_user)


@pytest.fixture
def order(channel):
    return make_order(channel=channel, items=3)
