from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users as the API sees them: tokens, login, authentication, token rotation."""

    name = "accounts"
    verbose_name = "Accounts"
