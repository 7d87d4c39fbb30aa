"""Helpers of the admin's tests (tests/orders/test_admin_*.py): a list's queries,
a page's links and the form a change page posts back, staff with given permissions."""

from html.parser import HTMLParser

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_api_user


def changelist_queries(client, url="/admin/orders/order/"):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response


class HtmlLinks(HTMLParser):
    """The href of the link whose text is `text`, in a page."""

    def __init__(self, text):
        super().__init__()
        self.text, self.href, self.found = text, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.href = dict(attrs).get("href")

    def handle_data(self, data):
        if data.strip() == self.text and self.found is None:
            self.found = self.href

    @classmethod
    def named(cls, page, text):
        parser = cls(text)
        parser.feed(page)
        assert parser.found is not None, text
        return parser.found


class _Form(HTMLParser):
    """The fields a change page's form posts back, as the browser would."""

    def __init__(self):
        super().__init__()
        self.data, self._textarea, self._select = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "checkbox", "radio"):
            self.data[name] = attrs.get("value", "")
        elif tag == "input" and name and "checked" in attrs:
            self.data[name] = attrs.get("value", "on")
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = ""
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and "selected" in attrs:
            self.data[self._select] = attrs.get("value", "")

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None


def change_form(client, url) -> dict:
    form = _Form()
    form.feed(client.get(url).content.decode())
    return form.data


def superuser_order_form(client, order) -> tuple[str, dict]:
    """Logged in as a superuser: the order's change page URL and its form as shown."""
    client.force_login(make_api_user(is_superuser=True, is_staff=True))
    url = f"/admin/orders/order/{order.pk}/change/"
    return url, change_form(client, url)


def staff_with(channel, *codenames):
    """Staff of `channel` with the permissions of these codenames."""
    from django.contrib.auth.models import Permission

    user = make_api_user(channels=[channel], is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user
