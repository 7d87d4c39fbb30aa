from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """django.contrib.admin with the project's site (omnitron/admin/site.py)."""

    default_site = "omnitron.admin.site.AdminSite"
