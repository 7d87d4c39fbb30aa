"""`manage.py create_api_user`: users, channels, permission, token."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from orders.models import ChannelMembership
from tests.factories import ChannelFactory

User = get_user_model()


def create(*args):
    out = StringIO()
    call_command("create_api_user", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def channels_of(username):
    return set(
        ChannelMembership.objects.filter(user__username=username).values_list(
            "channel_id", flat=True
        )
    )


def test_prints_the_token_alone_and_grants_channels_and_capture(db):
    a, b = ChannelFactory(), ChannelFactory()
    out = create("wms", "--channel", str(a.pk), "--channel", str(b.pk))

    user = User.objects.get(username="wms")
    assert out == f"{user.auth_token.key}\n"
    assert channels_of("wms") == {a.pk, b.pk}
    assert user.has_perm("orders.capture_order")
    assert not user.is_staff
    assert not user.has_usable_password()


def test_rerunning_is_safe_and_makes_the_user_what_the_options_say(db):
    a, b = ChannelFactory(), ChannelFactory()
    first = create("wms", "--channel", str(a.pk), "--channel", str(b.pk))
    second = create("wms", "--channel", str(b.pk), "--no-capture", "--password", "s3cret-pass")

    user = User.objects.get(username="wms")
    assert first == second  # the same token
    assert channels_of("wms") == {b.pk}
    assert not user.has_perm("orders.capture_order")
    assert user.check_password("s3cret-pass")
    assert User.objects.filter(username="wms").count() == 1


def test_all_channels_and_superuser(db):
    channels = {ChannelFactory().pk for _ in range(3)}
    create("ops", "--all-channels", "--superuser")

    user = User.objects.get(username="ops")
    assert channels_of("ops") == channels
    assert user.is_superuser
    assert user.is_staff


def test_staff_may_view_orders_in_the_admin(db):
    create("operator", "--staff", "--password", "pw-operator-1")
    user = User.objects.get(username="operator")
    assert user.is_staff
    assert not user.is_superuser
    assert user.has_perm("orders.view_order")
    assert user.has_perm("capture.view_capture")
    assert not user.has_perm("orders.change_order")


def test_unknown_channel_is_refused(db):
    with pytest.raises(CommandError, match="Unknown channel"):
        create("wms", "--channel", "424242")
    assert not User.objects.filter(username="wms").exists()


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["u" * 151], "Not a username"),  # was a DataError traceback (varchar(150))
        (["bad user"], "Not a username"),
        ([""], "Not a username"),  # was a user with no name, whose captures showed none
        (["wms", "--password", ""], "cannot be empty"),
        (["wms", "--channel", "2147483648"], "not a channel id"),
        (["wms", "--channel", "0"], "not a channel id"),
    ],
)
def test_a_username_or_channel_the_database_cannot_hold_is_refused(db, args, refusal):
    with pytest.raises(CommandError, match=refusal):
        create(*args)
    assert not User.objects.exists()


def test_a_rerun_leaves_a_deactivated_user_inactive(db):
    """A provisioning script's re-run revived an integration an operator had stopped."""
    channel = ChannelFactory()
    token = create("wms", "--channel", str(channel.pk)).strip()
    User.objects.filter(username="wms").update(is_active=False)
    assert create("wms", "--channel", str(channel.pk)).strip() == token
    assert not User.objects.get(username="wms").is_active


def test_a_user_left_without_a_channel_is_warned_about(db):
    """On a fresh database (Docker's, before any import) --all-channels gave the user no
    channel, silently: every list was empty and every capture order_not_found."""
    warned = StringIO()
    call_command("create_api_user", "early", "--all-channels", stdout=StringIO(), stderr=warned)
    assert "no channel" in warned.getvalue()
    ChannelFactory()
    again = StringIO()
    call_command("create_api_user", "early", "--all-channels", stdout=StringIO(), stderr=again)
    assert again.getvalue() == ""
    assert len(channels_of("early")) == 1
    superuser = StringIO()
    call_command("create_api_user", "root", "--superuser", stdout=StringIO(), stderr=superuser)
    assert superuser.getvalue() == ""  # sees every order without channels


def test_a_username_is_stored_as_the_admin_login_reads_it(db):
    """NFKC, as Django's forms read it: "ｗｍｓ" was stored as typed, and the admin's
    login and user page read it as "wms", another name."""
    channel = ChannelFactory()
    token = create("ｗｍｓ", "--channel", str(channel.pk)).strip()
    assert create("wms", "--channel", str(channel.pk)).strip() == token  # the same user
    assert list(User.objects.values_list("username", flat=True)) == ["wms"]
    # ...and the API's login reads it the same way (omnisdk logs in with the name given).
    create("wms", "--channel", str(channel.pk), "--password", "pw-for-wms-1")
    client = APIClient()
    answer = client.post("/api/v1/auth/login/", {"username": "ｗｍｓ", "password": "pw-for-wms-1"},
                         format="json")  # fmt: skip
    assert (answer.status_code, answer.json()) == (200, {"key": token})


def test_a_name_stored_as_typed_before_stays_that_user(db):
    """Before names were stored as NFKC, "ｆｕｌｌ" was stored as typed: a re-run made a
    second user "full" (a new token), and with both there it reconfigured "full"."""
    channel = ChannelFactory()
    token = create("ｆｕｌｌ", "--channel", str(channel.pk), "--password", "pw-full-1").strip()
    User.objects.filter(username="full").update(username="ｆｕｌｌ")  # as stored back then
    other = create("full", "--channel", str(channel.pk)).strip()  # another user, now
    assert create("ｆｕｌｌ", "--channel", str(channel.pk)).strip() == token
    assert other != token
    assert sorted(User.objects.values_list("username", flat=True)) == ["full", "ｆｕｌｌ"]
    answer = APIClient().post("/api/v1/auth/login/", {"username": "ｆｕｌｌ",
                                                      "password": "pw-full-1"}, format="json")  # fmt: skip
    assert (answer.status_code, answer.json()) == (200, {"key": token})


def test_a_rerun_without_an_option_takes_back_what_it_granted(db):
    """Re-running makes the user what the options say: a re-run without --staff or
    --mark-sent leaves an integration that was staff (or the ERP's) without the admin
    and without PATCH is_send."""
    channel = ChannelFactory()
    create("erp", "--channel", str(channel.pk), "--staff", "--mark-sent", "--password", "pw-erp-1")
    user = User.objects.get(username="erp")
    assert (user.is_staff, user.has_perm("orders.view_order")) == (True, True)
    assert user.has_perm("orders.mark_order_sent")

    create("erp", "--channel", str(channel.pk))
    user = User.objects.get(username="erp")
    assert not user.is_staff
    assert not user.has_perm("orders.view_order")
    assert not user.has_perm("capture.view_capture")
    assert not user.has_perm("orders.mark_order_sent")
    assert user.has_perm("orders.capture_order")


def test_a_rerun_without_a_channel_option_keeps_the_users_channels(db):
    """docs/operations.md: no channel option leaves the channels as they are (a re-run
    to set a password must not leave the integration without orders)."""
    a, b = ChannelFactory(), ChannelFactory()
    create("wms", "--channel", str(a.pk), "--channel", str(b.pk))
    warned = StringIO()
    call_command("create_api_user", "wms", "--password", "pw-wms-2", stdout=StringIO(),
                 stderr=warned)  # fmt: skip
    assert channels_of("wms") == {a.pk, b.pk}
    assert warned.getvalue() == ""
