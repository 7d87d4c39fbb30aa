from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """django.contrib.admin with the project's site (omnitron/admin.py)."""

    default_site = "omnitron.admin.AdminSite"
