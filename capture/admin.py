"""The capture audit in the admin: shown, never added, edited or deleted."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from django.forms.models import BaseInlineFormSet

from omnitron.admin.dates import UtcDayFilter
from omnitron.admin.large_tables import LargeTableAdmin
from omnitron.admin.pages import ReadOnlyMixin
from omnitron.api.throttling import EXPORT_SCOPE, user_scope_wait
from orders.admin import MAX_INLINE_ROWS, OrderFilter, UserChannelsFilter
from orders.models import Order
from orders.selectors import visible_to

from .exceptions import ExportTooLarge
from .export import captures_csv_response
from .models import Capture, CaptureItem

# What the capture pages show for no value (a capture without an Idempotency-Key):
# Django's "-" is also a key any API client may send, and the two looked the same. A
# key is visible ASCII (capture/idempotency.py), so an em dash is never one.
NO_VALUE = "\u2014"


@admin.display(description="currency")
def currency(capture: Capture) -> str:
    """As the order's pages show it (`TRY`, where the API and the CSV say `try`)."""
    return capture.currency.upper()


class CaptureInline(ReadOnlyMixin, admin.TabularInline):
    """On the order page: each capture with its user, time, amount and items."""

    model = Capture
    extra = 0
    empty_value_display = NO_VALUE
    fields = ("id", "user", "created_at", "amount", currency, "captured_items",
              "idempotency_key", "request_id")  # fmt: skip
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("user")
            .prefetch_related(
                Prefetch(
                    "items", queryset=CaptureItem.objects.only("id", "capture_id", "order_item_id")
                )
            )
        )

    @admin.display(description="items")
    def captured_items(self, capture):
        return ", ".join(f"#{item.order_item_id}" for item in capture.items.all())


class FirstRowsFormSet(BaseInlineFormSet):
    """The first MAX_INLINE_ROWS rows only (a read-only inline's: nothing is saved)."""

    def get_queryset(self):
        if not hasattr(self, "_first_rows"):  # read once: the forms each ask for it
            self._first_rows = list(super().get_queryset()[:MAX_INLINE_ROWS])
        return self._first_rows


class CaptureItemInline(ReadOnlyMixin, admin.TabularInline):
    """A capture's items, the first MAX_INLINE_ROWS: any API client may capture 1,000
    items at once, and that page was 1,008 queries and 1.2 MB of rows (a second each;
    a dozen views at once held every worker, an outside test)."""

    model = CaptureItem
    formset = FirstRowsFormSet
    extra = 0
    empty_value_display = NO_VALUE
    fields = ("order_item", "price", "attributes_before", "attributes_after")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order_item")


@admin.register(Capture)
class CaptureAdmin(ReadOnlyMixin, LargeTableAdmin):
    empty_value_display = NO_VALUE
    list_display = ("id", "order", "user", "created_at", "amount", currency, "idempotency_key")
    list_select_related = ("order", "user")
    # Idempotency-Keys and request ids are not indexed (an index more on every capture's
    # insert): the request log names the order of each request.
    search_fields = ("order__number",)
    search_help_text = "A whole order number."
    # ?order=<pk>: the link on an order's page. A channel's captures: its merchant
    # account's settlement, exported alone.
    list_filter = (("created_at", UtcDayFilter), ("channel", UserChannelsFilter), OrderFilter)
    actions = ["export_csv"]
    readonly_fields = ("order", "user", "created_at", "amount", currency, "idempotency_key",
                       "request_id", "item_count")  # fmt: skip
    fields = readonly_fields
    inlines = [CaptureItemInline]

    @admin.display(description="items")
    def item_count(self, capture):
        count = capture.items.count()
        if count <= MAX_INLINE_ROWS:
            return str(count)
        return (f"{count}: the first {MAX_INLINE_ROWS} are below; the list's CSV export of "
                "this capture has every one")  # fmt: skip

    def get_queryset(self, request):
        return visible_to(super().get_queryset(request), request.user)

    @admin.action(description="Export selected captures as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        """The API's reconciliation export (capture/export.py) of the selected captures,
        counted toward the user's export limit as the API's are (staff running it at
        once took every worker, an outside test); too many rows or exports, the list
        again with why."""
        if (wait := user_scope_wait(request, EXPORT_SCOPE)) is not None:
            self.message_user(request, f"Too many exports at once: try again in {wait} s.",
                              messages.ERROR)  # fmt: skip
            return None
        try:
            return captures_csv_response(queryset)
        except ExportTooLarge as exc:
            self.message_user(request, str(exc.detail), messages.ERROR)
            return None


# The order's page lists its captures too.
order_admin = admin.site.get_model_admin(Order)
order_admin.inlines = [*order_admin.inlines, CaptureInline]


# A user who has captured keeps their username: the audit names them by it (PostgreSQL
# refuses the change too, capture/migrations/0010). Said on the user's page, not a 500.
user_admin = admin.site.get_model_admin(get_user_model())


class UserChangeForm(user_admin.form):
    """Django reads a username as NFKC (the form's field and the model's clean): a
    stored "ｆｕｌｌ" comes back "full". That is no rename, and the stored name stays:
    taken for one, it blocked every change to such a capturer, deactivation included."""

    def clean_username(self):
        username = self.cleaned_data["username"]
        user = self.instance
        if user.pk and user.normalize_username(user.username) == username:
            return user.username
        if user.pk and username != user.username and Capture.objects.filter(user=user).exists():
            raise forms.ValidationError(
                "This user has captured: the capture audit names them by this username, "
                "so it stays. Make a new user instead.",
                code="capturer_username_fixed",
            )
        return username

    def validate_unique(self):
        # Run by every clean (ModelForm._post_clean), after the model's clean() wrote the
        # NFKC form on the instance: the stored name goes back first, so that the check
        # and the save see it (checked as "full", a "ｆｕｌｌ" beside a user "full" could
        # not be saved at all).
        stored, user = self.initial.get("username"), self.instance
        if user.pk and stored and user.normalize_username(stored) == user.username:
            user.username = stored
        super().validate_unique()


user_admin.form = UserChangeForm
