from django.core.management.base import BaseCommand, CommandError

from accounts.services import api_token_rotate


class Command(BaseCommand):
    help = "Replace a user's API token (the old one stops at once); print the new key."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, **options):
        try:
            token = api_token_rotate(username=options["username"])
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(token.key)
