from django.contrib.auth import authenticate, get_user_model
from rest_framework import serializers

from .error_codes import AccountErrorCode
from .services import login_slot


class LoginSerializer(serializers.Serializer):
    # min_length: for the document (minLength); "" is refused first, as `blank`.
    username = serializers.CharField(min_length=1, max_length=150, trim_whitespace=False)
    password = serializers.CharField(
        min_length=1,
        max_length=1024,
        trim_whitespace=False,
        style={"input_type": "password"},
        write_only=True,
    )

    def validate(self, attrs):
        username = attrs["username"]
        User = get_user_model()
        if not User.objects.filter(username=username).exists():
            # As the admin's login form reads it (NFKC), and create_api_user stores it:
            # "ｗｍｓ" is the user "wms". A name stored as sent (before create_api_user
            # normalized) still logs in as sent.
            username = User.normalize_username(username)
        with login_slot():
            user = authenticate(
                request=self.context.get("request"),
                username=username,
                password=attrs["password"],
            )
        if user is None:
            raise AccountErrorCode.INVALID_CREDENTIALS.validation_error()
        attrs["user"] = user
        return attrs


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
