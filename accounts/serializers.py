from rest_framework import serializers

from .passwords import MAX_PASSWORD_LENGTH


class LoginSerializer(serializers.Serializer):
    # min_length: for the document (minLength); "" is refused first, as `blank`.
    username = serializers.CharField(min_length=1, max_length=150, trim_whitespace=False)
    password = serializers.CharField(
        min_length=1,
        max_length=MAX_PASSWORD_LENGTH,
        trim_whitespace=False,
        style={"input_type": "password"},
        write_only=True,
    )


class TokenSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Send it as `Authorization: Token <key>`.")


class ActiveUserSerializer(serializers.Serializer):
    pk = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField(allow_blank=True)
    first_name = serializers.CharField(allow_blank=True)
    last_name = serializers.CharField(allow_blank=True)
    is_staff = serializers.BooleanField()
    is_superuser = serializers.BooleanField()
