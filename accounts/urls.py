from django.urls import path

from .views import ActiveUserView, LoginView

urlpatterns = [
    path("auth/login/", LoginView.as_view(), name="login"),
    path("active_user/", ActiveUserView.as_view(), name="active-user"),
]
