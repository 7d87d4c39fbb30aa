"""Login and the current user, as Omnitron answers them, so Akinon's SDK (omnisdk)
can log in, validate its token and re-login on a 401."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .schema import UNAUTHORIZED, UNAVAILABLE, WRITE_ERRORS, field_errors
from .throttling import LoginAddressThrottle, LoginUsernameThrottle


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, trim_whitespace=False)
    password = serializers.CharField(
        max_length=1024, trim_whitespace=False, style={"input_type": "password"}, write_only=True
    )

    def validate(self, attrs):
        user = authenticate(
            request=self.context.get("request"),
            username=attrs["username"],
            password=attrs["password"],
        )
        # One message for an unknown user, a wrong password and an inactive user.
        if user is None:
            raise serializers.ValidationError(
                "Unable to log in with provided credentials.", code="invalid_credentials"
            )
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


class LoginView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginAddressThrottle, LoginUsernameThrottle]

    @extend_schema(
        summary="Log in",
        description="Exchange a username and password for the user's API token.",
        tags=["Auth"],
        request=LoginSerializer,
        responses={
            200: TokenSerializer,
            400: field_errors(
                "Wrong username or password (`code`: `invalid_credentials`, the same answer "
                "for both), or a missing field."
            ),
            **WRITE_ERRORS,
        },
        auth=[],
    )
    def post(self, request):
        serializer = LoginSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"key": token.key})


class ActiveUserView(APIView):
    @extend_schema(
        summary="Current user",
        description="The user the token belongs to (omnisdk calls it to validate a token).",
        tags=["Auth"],
        responses={200: ActiveUserSerializer, 401: UNAUTHORIZED, 503: UNAVAILABLE},
    )
    def get(self, request):
        return Response(ActiveUserSerializer(request.user).data)
