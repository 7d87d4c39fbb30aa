from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users as the API sees them: tokens, login, authentication, token rotation; and
    the indexes of the admin's history of what users changed (Django's
    `django_admin_log`: accounts/migrations)."""

    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from rest_framework.authtoken.models import Token

        # DRF's Token prints as its key, and Django prints related rows wherever it
        # lists them: a user's delete page showed staff the user's key (a superuser's
        # too). Named by its user and last four characters instead.
        Token.__str__ = lambda token: f"API token of user {token.user_id} (…{token.key[-4:]})"
