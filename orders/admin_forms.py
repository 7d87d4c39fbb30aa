"""The order admin's forms: an order's, and an item's, which keeps what a capture
relies on (CAPTURED_ITEM_FROZEN) and refuses a change made on a page a capture
overtook."""

import copy

from django import forms
from django.core.exceptions import ValidationError

from .models import ChannelMembership, delivery_range_normalized, price_currency_error
from .services import order_item_captured_at_locked

# What a capture's audit record relies on: once an item is captured, no one changes
# these through the admin, superusers included. The database refuses a change to all
# but `status` from anywhere (capture/migrations/0004 and 0009, triggers
# captured_item_fixed and captured_item_sku_fixed); the status is the admin's rule
# only, so that another system may still move it.
CAPTURED_ITEM_FROZEN = (
    "order", "product_sku", "price", "price_currency", "status", "captured_at",
)  # fmt: skip


def _json_object(value):
    """A JSON field the seed's Order declares an object (the import's rule too): a list,
    a string or a number saved here broke every answer holding the order or the item
    (the capture's too) for a client generated from the schema. None: the post left
    the field out, and it keeps its value (StorableJSONField refuses a posted null)."""
    if value is not None and not isinstance(value, dict):
        raise forms.ValidationError("Must be a JSON object ({} for none).", code="not_an_object")
    return value


class OrderForm(forms.ModelForm):
    def clean_delivery_range(self):
        try:
            return delivery_range_normalized(self.cleaned_data["delivery_range"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_extra_field(self):
        return _json_object(self.cleaned_data["extra_field"])

    def clean_cancellation_info(self):
        return _json_object(self.cleaned_data["cancellation_info"])


class OrderItemForm(forms.ModelForm):
    """A captured item's frozen fields are shown disabled: Django ignores whatever a
    disabled field posts, so even a forged form changes nothing. An item's price is in
    its order's currency (a capture's amount adds its items' prices up).

    A change is saved only if the item's capture state is still what the page showed:
    the page carries it (`shown_capture`), and the save compares it with the row, locked
    with its order's, order first as a capture locks them (so the two never deadlock).
    Compared with the item as read for the POST instead, a capture that came while the
    page was open went unnoticed, and the operator's change (cancelling an item just
    charged) was dropped without a word."""

    shown_capture = forms.CharField(widget=forms.HiddenInput, required=False)

    def clean_extra_field(self):
        return _json_object(self.cleaned_data["extra_field"])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["shown_capture"].initial = _capture_state(self.instance.captured_at)
        if self.instance.pk and self.instance.captured_at is not None:
            for name in CAPTURED_ITEM_FROZEN:
                if name in self.fields:
                    self.fields[name].disabled = True

    @property
    def changed_data(self):
        # What the page shows of the item's capture is no change of the operator's. A
        # field disabled because the item was captured after the page was shown posts
        # what the operator chose, which Django ignores: that is a change too (refused).
        changed = [name for name in super().changed_data if name != "shown_capture"]
        if self._shown_capture() != _capture_state(self.instance.captured_at):
            changed += [name for name in CAPTURED_ITEM_FROZEN if self._posted_differs(name)]
        return changed

    def _shown_capture(self) -> str:
        # A post without the field (a page from before it, a script) is taken as
        # showing the item as read for this request.
        shown = self._posted("shown_capture")
        return _capture_state(self.instance.captured_at) if shown is None else shown

    def _posted(self, name: str):
        field = self.fields[name]
        return field.widget.value_from_datadict(self.data, self.files, self.add_prefix(name))

    def _posted_differs(self, name: str) -> bool:
        posted = self._posted(name) if name in self.fields else None
        if posted is None:
            return False
        enabled = copy.copy(self.fields[name])
        enabled.disabled = False
        return enabled.has_changed(self.get_initial_for_field(enabled, name), posted)

    def clean(self):
        cleaned = super().clean()
        item = self.instance
        if item.pk is not None and self.has_changed():
            # The admin's change view runs in a transaction: the locks last until the save.
            captured_at = order_item_captured_at_locked(item)
            if _capture_state(captured_at) != self._shown_capture():
                raise ValidationError(
                    "This item was captured while the page was open: reload it.",
                    code="captured_meanwhile",
                )
        order = cleaned.get("order") or (item.order if item.order_id else None)
        editable = _is_editable(self, "price_currency") and order
        if editable and (
            error := price_currency_error(order.currency, cleaned.get("price_currency"))
        ):
            self.add_error("price_currency", error)
        return cleaned


def _is_editable(form, name: str) -> bool:
    # A captured item's currency is shown disabled: one from before the check stays.
    return name in form.fields and not form.fields[name].disabled


def _capture_state(captured_at) -> str:
    return "" if captured_at is None else captured_at.isoformat()


class ChannelMembershipFormSet(forms.BaseInlineFormSet):
    """The channels on a user's page. Django's inline leaves the user out of each row's
    own check of the (user, channel) constraint: a channel the user was given after the
    page was shown failed in the database (500). The rows are checked as they will be
    saved, in Django's order: the shown rows deleted or changed, in turn, then the
    new ones; a row whose channel the user still has at its turn is its error (a
    channel taken from one row and given to another in the same save is not)."""

    def clean(self):
        super().clean()  # Django's: two rows of the page naming one channel
        if self.instance.pk is None:
            return
        held = dict(ChannelMembership.objects.filter(user=self.instance)
                    .values_list("pk", "channel_id"))  # fmt: skip
        for form in self.forms:
            row = form.instance.pk if form in self.initial_forms else None
            if self.can_delete and self._should_delete_form(form):
                held.pop(row, None)
                continue
            channel = getattr(form, "cleaned_data", {}).get("channel")
            if channel is None or not form.has_changed():
                continue
            if channel.pk in {c for pk, c in held.items() if pk != row}:
                form.add_error("channel", "The user has this channel already: reload the page.")
            elif row is not None:
                held[row] = channel.pk
