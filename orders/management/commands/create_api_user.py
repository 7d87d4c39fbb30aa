from django.core.management.base import BaseCommand, CommandError

from orders.management.arguments import channel_id
from orders.models import ChannelMembership
from orders.services import ApiUserInvalid, api_user_create_or_update


class Command(BaseCommand):
    help = (
        "Create or update an API user and print their token key (alone on stdout). "
        "Safe to re-run: the user's channels and permissions become what the options say."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        channels = parser.add_mutually_exclusive_group()
        channels.add_argument(
            "--channel",
            type=channel_id,
            action="append",
            dest="channels",
            metavar="ID",
            help="grant the orders of this channel (repeatable)",
        )
        channels.add_argument(
            "--all-channels", action="store_true", help="grant every existing channel"
        )
        parser.add_argument(
            "--no-capture", action="store_true", help="omit the orders.capture_order permission"
        )
        parser.add_argument(
            "--mark-sent",
            action="store_true",
            help="grant orders.mark_order_sent (the ERP: PATCH is_send on orders)",
        )
        parser.add_argument("--password", help="set a password (for login and the admin)")
        parser.add_argument(
            "--staff", action="store_true", help="admin access, viewing orders of its channels"
        )
        parser.add_argument("--superuser", action="store_true", help="every permission, all orders")

    def handle(self, *args, **options):
        try:
            token = api_user_create_or_update(
                username=options["username"],
                channel_ids=options["channels"],
                all_channels=options["all_channels"],
                can_capture=not options["no_capture"],
                can_mark_sent=options["mark_sent"],
                password=options["password"],
                staff=options["staff"],
                superuser=options["superuser"],
            )
        except ApiUserInvalid as exc:
            raise CommandError(str(exc)) from exc
        if (
            not options["superuser"]
            and not ChannelMembership.objects.filter(user_id=token.user_id).exists()
        ):
            self.stderr.write(
                "The user has no channel: it sees no order and captures none. Channels come "
                "with the orders imported (import_orders); run this again with --channel or "
                "--all-channels after the import."
            )
        self.stdout.write(token.key)
