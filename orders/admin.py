"""The operators' view of orders. Staff see the orders of their channels only
(superusers see all); what the capture flow owns is read-only."""

from decimal import Decimal

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from omnitron.admin.dates import UtcDayFilter
from omnitron.admin.large_tables import LargeTableAdmin
from omnitron.admin.pages import ChangedFieldsOnlyMixin
from omnitron.limits import MAX_BIGINT

from .admin_forms import ChannelMembershipFormSet, OrderForm, OrderItemForm
from .models import (
    Channel,
    ChannelMembership,
    Customer,
    Order,
    OrderItem,
)
from .selectors import (
    EqualsChoice,
    channel_id_list_for_user,
    channel_ids_for_user,
    in_channels,
    order_item_list_for_user,
    order_list_for_user,
    visible_to,
)

# An item's fields no operator edits: what a capture writes (when, and the attributes
# it merges) and the row's own timestamps.
NOT_EDITED_ON_ITEMS = ("captured_at", "attributes", "created_date", "modified_date")


class FixedOnceAddedMixin:
    """`fixed_once_added`: fields given when a row is added, then shown, not edited."""

    fixed_once_added: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        fixed = self.fixed_once_added if obj is not None else ()
        return (*super().get_readonly_fields(request, obj), *fixed)


class FixedIdMixin(FixedOnceAddedMixin):
    """An id is typed when a row is added (Omnitron's ids), then fixed: a changed id
    saved a second row and left the first as it was."""

    fixed_once_added = ("id",)


class UserChannelsFilter(admin.RelatedFieldListFilter):
    """The channel filter lists the channels the user may see (every one for a
    superuser): Django's listed every channel's name and id to staff of one. It is
    shown, and applied, even with one channel to list: Django leaves out a filter of
    one choice and then ignored its parameter, so staff of one channel given a link to
    another's (`?channel__id__exact=1`) saw all their own rows under it."""

    def has_output(self):
        return True

    def queryset(self, request, queryset):
        # One channel, written into the statement (in_channels): bound as a parameter,
        # the count's generic plan read every capture for a channel of few (300,000).
        value = self.used_parameters.get(self.lookup_kwarg)
        one = len(self.used_parameters) == 1 and value and len(value) == 1
        if one and (pk := _pk(value[0])):
            return in_channels(queryset, [pk])
        return super().queryset(request, queryset)

    def field_choices(self, field, request, model_admin):
        choices = super().field_choices(field, request, model_admin)
        if request.user.is_superuser:
            return choices
        allowed = set(channel_id_list_for_user(request.user))
        return [(pk, label) for pk, label in choices if pk in allowed]


def _pk(value) -> int | None:
    """A query string's value as a bigint id, or None when it is none."""
    text = str(value)
    pk = int(text) if text.isascii() and text.isdigit() else None
    return pk if pk is not None and 1 <= pk <= MAX_BIGINT else None


class StatusFilter(admin.ChoicesFieldListFilter):
    """Django's filter by a status, with the status written into the statement
    (EqualsChoice): bound as a parameter, the list's statements got one generic plan
    for every status once prepared, which walked every order for a status few have."""

    def queryset(self, request, queryset):
        value = self.used_parameters.get(self.lookup_kwarg)
        choices = {str(choice) for choice, _ in self.field.flatchoices}
        if len(self.used_parameters) == 1 and value and len(value) == 1 and value[0] in choices:
            return queryset.filter(EqualsChoice(F(self.field_path), value[0]))
        return super().queryset(request, queryset)


class OrderFilter(admin.SimpleListFilter):
    """The rows (items, captures) of one order: `?order=<pk>`, the links on an order's
    page. It offers only the order asked for: a choice per order would list the whole
    table."""

    title = "order"
    parameter_name = "order"

    def lookups(self, request, model_admin):
        value = self.value()
        if value is None:
            return []
        pk = _pk(value)
        orders = visible_to(Order.objects.all(), request.user)
        number = orders.filter(pk=pk).values_list("number", flat=True).first() if pk else None
        return [(value, number or "no such order")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        pk = _pk(self.value())
        return queryset.none() if pk is None else queryset.filter(order_id=pk)


def _without_shown_capture(admin_class, request, obj, fields):
    """A page that changes nothing (view permission only) shows every field read-only:
    not the capture state the form carries."""
    if admin_class.has_change_permission(request, obj):
        return fields
    return [field for field in fields if field != "shown_capture"]


class SuperuserWritesMixin:
    """Only superusers add, change or delete these: they span channels. A staff member
    of one channel with the delete permission on customers was shown, on the delete
    page, the orders of every channel the customer had bought in; one with the add
    permission on channel memberships could give themselves any channel."""

    superuser_writes = ("add", "change", "delete")

    def _allowed(self, write: str, request) -> bool:
        return request.user.is_superuser or write not in self.superuser_writes

    def has_add_permission(self, request, *args):
        return self._allowed("add", request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self._allowed("change", request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed("delete", request) and super().has_delete_permission(request, obj)


@admin.register(Channel)
class ChannelAdmin(FixedIdMixin, SuperuserWritesMixin, admin.ModelAdmin):
    list_display = ("id", "name")
    search_fields = ("name",)


@admin.register(Customer)
class CustomerAdmin(FixedIdMixin, SuperuserWritesMixin, LargeTableAdmin):
    """Customers grow with the orders: a list on the id, searched by whole email
    (indexed; substrings of three columns, word by word, read a million rows per word)."""

    # Staff add customers for their orders and change those who buy only in their
    # channels; a delete reaches every channel.
    superuser_writes = ("delete",)

    list_display = ("id", "email", "first_name", "last_name")
    search_fields = ("email",)
    search_help_text = "A whole email (case-sensitive)."

    def has_change_permission(self, request, obj=None):
        """A customer with orders in a channel the staff member does not have is not
        theirs to change: one of channel A changed the email of a customer who bought
        only in channel B (an outside test)."""
        allowed = super().has_change_permission(request, obj)
        if not allowed or obj is None or request.user.is_superuser:
            return allowed
        theirs = channel_id_list_for_user(request.user)
        return not obj.orders.exclude(channel_id__in=theirs).exists()


@admin.register(ChannelMembership)
class ChannelMembershipAdmin(SuperuserWritesMixin, admin.ModelAdmin):
    list_display = ("user", "channel")
    list_filter = ("channel",)
    list_select_related = ("user", "channel")
    search_fields = ("user__username",)
    autocomplete_fields = ("channel",)


class ChannelMembershipInline(SuperuserWritesMixin, admin.TabularInline):
    model = ChannelMembership
    formset = ChannelMembershipFormSet
    extra = 0
    autocomplete_fields = ("channel",)


# A user's page lists the channels whose orders they see.
user_admin = admin.site.get_model_admin(get_user_model())
user_admin.inlines = [*user_admin.inlines, ChannelMembershipInline]


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    form = OrderItemForm
    extra = 0
    can_delete = False
    fields = (
        "id", "product_sku", "status", "price", "retail_price", "price_currency",
        "attributes", "captured_at", "shown_capture",
    )  # fmt: skip
    readonly_fields = (
        "id",
        "product_sku",
        "price",
        "retail_price",
        "price_currency",
        *NOT_EDITED_ON_ITEMS,
    )
    show_change_link = True

    def get_fields(self, request, obj=None):
        return _without_shown_capture(self, request, obj, super().get_fields(request, obj))

    def has_add_permission(self, request, obj=None):
        return False


# An order with more items (or captures) than this shows them as a link to their list,
# not as rows on its page.
MAX_INLINE_ROWS = 100


def _rows(model, order) -> int:
    """How many rows of `model` the order has, counted up to MAX_INLINE_ROWS + 1 only,
    once per page (the inlines and the `lists` field both ask)."""
    counted = order.__dict__.setdefault("_inline_rows", {})
    if model not in counted:
        rows = model._default_manager.filter(order=order).order_by()[: MAX_INLINE_ROWS + 1]
        counted[model] = rows.count()
    return counted[model]


def _item_count(**filters) -> Subquery:
    """The number of the order's items (matching `filters`), counted for the rows of
    the page only: a GROUP BY over the join would count every order's items first."""
    items = OrderItem.objects.filter(order=OuterRef("pk"), **filters).order_by()
    return Subquery(items.values("order").annotate(n=Count("pk")).values("n"))


@admin.register(Order)
class OrderAdmin(FixedOnceAddedMixin, ChangedFieldsOnlyMixin, LargeTableAdmin):
    form = OrderForm
    list_display = (
        "number", "channel", "customer", "status_name", "amount_with_currency",
        "date_placed", "captured_items",
    )  # fmt: skip
    list_filter = (("status", StatusFilter), ("channel", UserChannelsFilter), "currency",
                   ("date_placed", UtcDayFilter))  # fmt: skip
    search_fields = ("number", "customer__email")
    search_help_text = "A whole order number or customer email."
    list_select_related = ("channel", "customer")
    readonly_fields = ("lists", "captured_amount", "created_date", "modified_date")
    raw_id_fields = ("customer",)
    inlines = [OrderItemInline]  # the capture app adds its captures
    fieldsets = [
        (
            None,
            {"fields": ("number", "channel", "customer", "status", "date_placed", "lists")},
        ),
        (
            "Amounts",
            {
                "fields": (
                    ("amount", "currency"),
                    "captured_amount",
                    "discount_amount",
                    "shipping_amount",
                    "shipping_tax_rate",
                    "installment_interest_amount",
                    "shipping_interest_amount",
                    "refund_amount",
                    "discount_refund_amount",
                    "shipping_refund_amount",
                )  # fmt: skip
            },
        ),
        (
            "Payment",
            {
                "fields": (
                    "payment_option",
                    "payment_option_slug",
                    "bin_number",
                    "installment",
                    "installment_count",
                    "checkout_provider_id",
                )  # fmt: skip
            },
        ),
        (
            "Shipping",
            {
                "fields": (
                    "delivery_type",
                    "shipping_company",
                    "cargo_company",
                    "is_send",
                    "tracking_number",
                    "defined_tracking_url",
                    "carrier_shipping_code",
                    "shipping_option_slug",
                    "delivery_range",
                )  # fmt: skip
            },
        ),
        ("Invoice", {"fields": ("invoice_number", "invoice_date", "e_archive_url")}),
        (
            "Cancellation",
            {"fields": ("cancel_status", "cancellation_info"), "classes": ("collapse",)},
        ),
        (
            "Other",
            {
                "fields": (
                    "client_type",
                    "external_status",
                    "segment",
                    "remote_addr",
                    "language_code",
                    "has_gift_box",
                    "gift_box_note",
                    "notes",
                    "extra_field",
                    "created_date",
                    "modified_date",
                )  # fmt: skip
            },
        ),
    ]

    # An order's channel is fixed once it exists (the database refuses a change:
    # orders/0008); its items and captures carry a copy of it. Its number and currency
    # are what its captures' audit, events and amounts name. is_send is the ERP's
    # (PATCH /api/v1/orders/{pk}/): a page open while the ERP took the order wrote it
    # back unsent, and the ERP pulled the order again.
    fixed_once_added = ("number", "channel", "currency", "is_send")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        user = request.user
        # A new order goes into one of the staff member's channels.
        if db_field.name == "channel" and not user.is_superuser:
            kwargs["queryset"] = Channel.objects.filter(pk__in=channel_ids_for_user(user))
        # Customers are not per channel: staff who may not view customers take (and are
        # shown) only those of their channels' orders. Any customer's id posted in the
        # form was shown back with its email, on the page of the form's error.
        if db_field.name == "customer" and not user.has_perm("orders.view_customer"):
            theirs = visible_to(Order.objects.all(), user).values("customer_id")
            kwargs["queryset"] = Customer.objects.filter(pk__in=theirs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_queryset(self, request):
        return (
            order_list_for_user(user=request.user)
            .select_related(*self.list_select_related)
            .annotate(
                items_total=_item_count(), items_captured=_item_count(captured_at__isnull=False)
            )
        )

    def get_inline_instances(self, request, obj=None):
        # The rows of a large order are not on its page: Django refuses a form of over
        # 1,000 fields (DATA_UPLOAD_MAX_NUMBER_FIELDS, a bare 400), which an order of
        # some 230 items (or 480 captures, two hidden fields each) posted, so it could
        # not be saved at all; its page of 1,000 items took 7 s. Its rows are a link to
        # their list (`lists`) instead.
        inlines = super().get_inline_instances(request, obj)
        if obj is None:
            return inlines
        return [inline for inline in inlines if _rows(inline.model, obj) <= MAX_INLINE_ROWS]

    @admin.display(description="lists")
    def lists(self, order):
        """A link to each inline's list of this order's rows, with its count (up to
        just past MAX_INLINE_ROWS); those past it are not shown below."""
        if order.pk is None:
            return "-"
        links = []
        for inline in self.inlines:
            meta = inline.model._meta
            url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
            rows = _rows(inline.model, order)
            count = f"{MAX_INLINE_ROWS}+" if rows > MAX_INLINE_ROWS else str(rows)
            name = meta.verbose_name if rows == 1 else meta.verbose_name_plural
            links.append(format_html('<a href="{}?order={}">{} {}</a>', url, order.pk, count,
                                     name))  # fmt: skip
        return format_html_join(", ", "{}", ((link,) for link in links))

    @admin.display(description="status")
    def status_name(self, order):
        return f"{order.get_status_display()} ({order.status})"

    @admin.display(description="amount")
    def amount_with_currency(self, order):
        return f"{order.amount} {order.currency.upper()}"

    @admin.display(description="captured amount")
    def captured_amount(self, order):
        """What the captures charged, beside the order's amount: nothing caps a capture
        at it (a refund after a capture lowers the amount; docs/operations.md), so an
        operator sees where more was charged."""
        if order.pk is None:
            return "-"
        captured = order.items.filter(captured_at__isnull=False).aggregate(total=Sum("price"))
        total = captured["total"] or Decimal("0.00")
        shown = f"{total} {order.currency.upper()}"
        return f"{shown}: more than the order's amount" if total > order.amount else shown

    @admin.display(description="captured")
    def captured_items(self, order):
        return f"{order.items_captured or 0} / {order.items_total or 0}"


@admin.register(OrderItem)
class OrderItemAdmin(FixedOnceAddedMixin, ChangedFieldsOnlyMixin, LargeTableAdmin):
    form = OrderItemForm
    list_display = ("id", "order", "product_sku", "status", "price", "captured_at")
    list_filter = (
        ("status", StatusFilter),
        ("captured_at", admin.EmptyFieldListFilter),
        OrderFilter,
    )
    search_fields = ("order__number",)
    search_help_text = "A whole order number."
    list_select_related = ("order",)
    raw_id_fields = ("order",)
    readonly_fields = NOT_EDITED_ON_ITEMS

    def get_queryset(self, request):
        return order_item_list_for_user(user=request.user).select_related("order")

    def get_fields(self, request, obj=None):
        return _without_shown_capture(self, request, obj, super().get_fields(request, obj))

    # An item stays in its order: moving it would move it to another channel too.
    fixed_once_added = ("order",)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A new item goes into an order the staff member sees.
        if db_field.name == "order":
            kwargs["queryset"] = order_list_for_user(user=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
