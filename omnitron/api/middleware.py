from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware

API_PREFIX = "/api/"


class CommonMiddleware(DjangoCommonMiddleware):
    """Django's CommonMiddleware, minus the APPEND_SLASH redirect under /api/:
    a redirected POST loses its body, so the API answers a coded 404 instead."""

    def should_redirect_with_slash(self, request):
        if request.path_info.startswith(API_PREFIX):
            return False
        return super().should_redirect_with_slash(request)
