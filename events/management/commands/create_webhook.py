import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from events.outbound import TargetRefused
from events.services import CANCELLED_NOTICE, KEEP, webhook_subscription_create_or_update
from orders.management.arguments import channel_id
from orders.models import Channel


class Command(BaseCommand):
    help = (
        "Create a webhook subscription, or update the one of this URL: a re-run changes "
        "only what its options give, keeps the rest (the secret too) and ends a pause. "
        'Prints {"id": ..., "secret": "whsec_..."} on stdout and nothing else.'
    )

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument(
            "--event", action="append", dest="events", metavar="TYPE",
            help="an event type it wants (repeatable; a new subscription: every type)",
        )  # fmt: skip
        channels = parser.add_mutually_exclusive_group()
        channels.add_argument(
            "--channel", action="append", dest="channels", type=channel_id, metavar="ID",
            help="only the events of this channel (repeatable; a new subscription: every "
            "channel)",
        )  # fmt: skip
        channels.add_argument(
            "--all-channels", action="store_const", const=[], dest="channels",
            help="the events of every channel (on a re-run: drop its channel filter)",
        )  # fmt: skip
        headers = parser.add_mutually_exclusive_group()
        headers.add_argument(
            "--header", action="append", dest="headers", metavar="NAME=VALUE",
            help="a header sent with every delivery, e.g. for the receiver's own auth "
            "(repeatable; on a re-run they replace its headers)",
        )  # fmt: skip
        headers.add_argument(
            "--no-headers", action="store_const", const=[], dest="headers",
            help="no extra header (on a re-run: drop its headers)",
        )  # fmt: skip

    def handle(self, *args, url, events, channels, headers, **options):
        try:
            subscription, _, cancelled = webhook_subscription_create_or_update(
                url=url, event_types=sorted(set(events)) if events else KEEP,
                channel_ids=None if channels is None else sorted(set(channels)),
                headers=KEEP if headers is None else _headers(headers),
            )  # fmt: skip
        except TargetRefused as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if missing := set(subscription.channel_ids) - set(
            Channel.objects.filter(pk__in=subscription.channel_ids).values_list("pk", flat=True)
        ):
            self.stderr.write(
                f"No channel {', '.join(map(str, sorted(missing)))} yet: its events are "
                "sent once its orders are imported."
            )
        if cancelled:  # as the admin says it: there is no undo
            self.stderr.write(CANCELLED_NOTICE.format(cancelled))
        self.stdout.write(json.dumps({"id": subscription.pk, "secret": subscription.secret}))


def _headers(given: list[str]) -> dict[str, str]:
    headers = {}
    for header in given:
        name, sep, value = header.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CommandError(f"--header takes NAME=VALUE, not {header!r}")
        # A name given again replaced the first value silently.
        if name.lower() in (known.lower() for known in headers):
            raise CommandError(f"--header {name} is given twice: each header once "
                               "(names are the same in any case).")  # fmt: skip
        headers[name] = value
    return headers
