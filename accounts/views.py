"""Login and the current user, as Omnitron answers them, so Akinon's SDK (omnisdk)
can log in, validate its token and re-login on a 401."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from omnitron.api.schema import (
    AUTHENTICATION,
    BODY_CODES,
    LOGIN_FIELD_CODES,
    PROTOCOL_ERRORS,
    UNAVAILABLE,
)
from omnitron.api.schema import error_responses as errors

from .error_codes import AccountErrorCode
from .serializers import ActiveUserSerializer, LoginSerializer, TokenSerializer
from .services import api_token_get_or_create, user_login
from .throttling import LOGIN_THROTTLES, login_wait


class LoginView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = LOGIN_THROTTLES

    def check_throttles(self, request):
        # The first limit that refuses answers (DRF asks every one, for the longest
        # wait): an outside test's 300 KB bodies answered 429 still cost 70 to 110 ms each.
        if (wait := login_wait(request, view=self)) is not None:
            self.throttled(request, wait)

    @extend_schema(
        summary="Log in",
        description="Exchange a username and password for the user's API token.",
        tags=["Auth"],
        request=LoginSerializer,
        responses={
            200: TokenSerializer,
            **errors(*AccountErrorCode, *LOGIN_FIELD_CODES, *BODY_CODES, *UNAVAILABLE),
        },
        auth=[],
    )
    def post(self, request):
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_login(request=request, **serializer.validated_data)
        token = api_token_get_or_create(user=user)
        return Response(TokenSerializer(token).data)


class ActiveUserView(APIView):
    @extend_schema(
        summary="Current user",
        description="The user the token belongs to (omnisdk calls it to validate a token).",
        tags=["Auth"],
        responses={
            200: ActiveUserSerializer,
            **errors(*AUTHENTICATION, *PROTOCOL_ERRORS, *UNAVAILABLE),
        },
    )
    def get(self, request):
        return Response(ActiveUserSerializer(request.user).data)
