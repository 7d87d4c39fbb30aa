"""A password the service sets is one its API login takes (helper 124). The login
refuses a password over 1,024 characters (400 `max_length`), but `create_api_user
--password` and the admin's password forms set longer ones: such a user could log in
to the admin and never through `POST /api/v1/auth/login/` (omnisdk), and a password
set in the admin replaces the user's token, so its integration was locked out."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from tests.factories import ChannelFactory, make_api_user

User = get_user_model()
LONGEST = "Long-pw-" + "x" * 1016  # 1,024 characters
LONG = LONGEST + "x"


def login(client, username, password):
    return client.post("/api/v1/auth/login/", {"username": username, "password": password},
                       content_type="application/json")  # fmt: skip


def create_api_user(username, password):
    call_command("create_api_user", username, "--channel", str(ChannelFactory().pk),
                 "--password", password, stdout=StringIO(), stderr=StringIO())  # fmt: skip


def test_create_api_user_refuses_a_password_the_login_would_refuse(client, db):
    with pytest.raises(CommandError, match="at most 1,024 characters"):
        create_api_user("longpw", LONG)
    assert not User.objects.filter(username="longpw").exists()
    create_api_user("longestpw", LONGEST)
    assert login(client, "longestpw", LONGEST).status_code == 200


@pytest.mark.parametrize("page", ["own", "user"])
def test_the_admins_password_forms_refuse_a_password_the_login_would_refuse(client, db, page):
    superuser = make_api_user(is_superuser=True, is_staff=True)
    superuser.set_password("Old-pw-123456")
    superuser.save()
    token = Token.objects.get(user=superuser).key
    client.force_login(superuser)
    if page == "own":
        url = "/admin/password_change/"
        data = {"old_password": "Old-pw-123456", "new_password1": LONG, "new_password2": LONG}
    else:
        url = f"/admin/auth/user/{superuser.pk}/password/"
        data = {"password1": LONG, "password2": LONG, "usable_password": "true"}
    response = client.post(url, data)
    assert response.status_code == 200  # the form again, with its error
    assert "at most 1,024 characters" in response.content.decode()
    superuser.refresh_from_db()
    assert superuser.check_password("Old-pw-123456")
    assert Token.objects.get(user=superuser).key == token  # the integration keeps its token
