import json

from django.core.management.base import BaseCommand, CommandError

from events.outbound import TargetRefused
from events.registry import EVENT_TYPES
from events.services import webhook_subscription_create_or_update


class Command(BaseCommand):
    help = (
        "Create a webhook subscription, or update the one of this URL (its secret stays). "
        'Prints {"id": ..., "secret": "whsec_..."} on stdout and nothing else.'
    )

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument(
            "--event", action="append", dest="events", metavar="TYPE",
            help="an event type it wants (repeatable; default: every type)",
        )  # fmt: skip
        parser.add_argument(
            "--channel", action="append", dest="channels", type=int, metavar="ID",
            help="only the events of this channel (repeatable; default: every channel)",
        )  # fmt: skip
        parser.add_argument(
            "--header", action="append", dest="headers", metavar="NAME=VALUE", default=[],
            help="a header sent with every delivery, e.g. for the receiver's own auth",
        )  # fmt: skip

    def handle(self, *args, **options):
        events = options["events"] or sorted(EVENT_TYPES)
        if unknown := set(events) - set(EVENT_TYPES):
            raise CommandError(f"Unknown event type(s): {', '.join(sorted(unknown))}")
        headers = {}
        for header in options["headers"]:
            name, sep, value = header.partition("=")
            if not sep or not name.strip():
                raise CommandError(f"--header takes NAME=VALUE, not {header!r}")
            headers[name.strip()] = value
        try:
            subscription, _ = webhook_subscription_create_or_update(
                url=options["url"], event_types=events, channel_ids=options["channels"],
                headers=headers,
            )  # fmt: skip
        except TargetRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps({"id": subscription.pk, "secret": subscription.secret}))
