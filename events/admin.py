"""Webhooks in the admin, for superusers only: subscriptions (the secret is shown once,
when it is made, then masked), events with their deliveries, and deliveries with every
attempt, filtered by state, with an action that sends failed ones again; and the
worker's task queue (procrastinate's jobs list, as a large list)."""

from django.contrib import admin, messages
from django.db import models, transaction
from django.utils import timezone
from django.utils.formats import localize
from procrastinate.contrib.django import app as task_queue
from procrastinate.contrib.django.admin import ProcrastinateJobAdmin
from procrastinate.contrib.django.models import ProcrastinateJob

from omnitron.admin.large_tables import LargeTableAdmin, capped_count
from omnitron.admin.pages import ReadOnlyMixin
from omnitron.admin.site import SuperuserOnly

from .metrics import FAILED_WINDOW
from .models import DeliveryAttempt, DeliveryState, Event, WebhookDelivery, WebhookSubscription
from .registry import EVENT_TYPES
from .services import (
    CANCELLED_NOTICE,
    narrowed,
    webhook_deliveries_cancel_unwanted,
    webhook_deliveries_redeliver,
    webhook_subscriptions_resume,
)


class ReadOnly(ReadOnlyMixin, SuperuserOnly):
    """Events, deliveries and attempts: superusers see them, nobody edits them (the
    deliveries' action sends failed ones again)."""


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ("url", "is_active", "paused_until", "pending", "failed", "event_types",
                    "channel_ids", "created_at")  # fmt: skip
    list_filter = ("is_active",)
    search_fields = ("url",)
    fields = ("url", "event_types", "channel_ids", "headers", "retry_schedule", "is_active",
              "masked_secret", "paused_until", "timeouts_in_a_row")  # fmt: skip
    readonly_fields = ("masked_secret", "paused_until", "timeouts_in_a_row")
    actions = ["resume"]
    # A URL typed without a scheme is https: production delivers to https only.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # deliveries keep their subscription: deactivate it instead

    @admin.display(description="secret")
    def masked_secret(self, subscription):
        if not subscription.pk:
            return "generated when you save, and shown once"
        return f"whsec_…{subscription.secret[-4:]}"

    # Its health at a glance (a failing receiver looked as the healthy ones): two counts
    # a row, on the partial indexes of pending and of failed deliveries, each stopping
    # at COUNT_CAP ("10,000+": a receiver down for a day has a backlog of millions).
    @admin.display(description="pending deliveries")
    def pending(self, subscription):
        return capped_count(subscription.deliveries.filter(state=DeliveryState.PENDING))

    @admin.display(description=f"failed in {FAILED_WINDOW.days} days, not sent again")
    def failed(self, subscription):
        recent = timezone.now() - FAILED_WINDOW
        failed = subscription.deliveries.filter(state=DeliveryState.FAILED, failed_at__gte=recent)
        return capped_count(failed)

    def _cancel_unwanted(self, request, subscription):
        if cancelled := webhook_deliveries_cancel_unwanted(subscription=subscription):
            messages.info(request, CANCELLED_NOTICE.format(cancelled))

    @admin.action(description="Resume the selected paused subscriptions now")
    def resume(self, request, queryset):
        resumed = webhook_subscriptions_resume(subscriptions=queryset)
        messages.info(request, f"{resumed} subscription(s) resumed: their deliveries go now.")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        types, channels = form.initial.get("event_types"), form.initial.get("channel_ids")
        if change and narrowed(types or [], channels or [], obj):
            # After the page's transaction, in batches: it would hold the lane jobs'
            # records of those deliveries until it ends.
            transaction.on_commit(lambda: self._cancel_unwanted(request, obj))
        if not change:
            messages.warning(
                request,
                f"The signing secret of {obj.url} is {obj.secret}. Copy it now: it is not "
                "shown again.",
            )


class DeliveryAttemptInline(ReadOnly, admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    fields = ("number", "started_at", "duration_ms", "status_code", "error", "response_excerpt")
    readonly_fields = fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnly, LargeTableAdmin):
    list_display = ("id", "event", "subscription", "state_shown", "attempts", "last_outcome",
                    "next_attempt_at", "delivered_at")  # fmt: skip
    list_filter = ("state", "subscription")
    list_select_related = ("event", "subscription")
    search_fields = ("event_id",)
    search_help_text = "A whole event id (evt_...)."
    fields = ("event", "subscription", "state_shown", "attempts", "created_at",
              "next_attempt_at", "delivered_at", "failed_at", "last_outcome")  # fmt: skip
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]

    @admin.display(description="state")
    def state_shown(self, delivery):
        """A pending delivery that nothing sends now says why (it looked alive)."""
        state = delivery.get_state_display()
        subscription = delivery.subscription
        if delivery.state != DeliveryState.PENDING:
            return state
        if not subscription.is_active:
            return f"{state}: not sent while its subscription is inactive"
        if subscription.is_paused:
            until = localize(timezone.localtime(subscription.paused_until))
            return f"{state}: its subscription is paused until {until}"
        return state

    @admin.action(description="Send the selected failed deliveries again (same webhook-id)")
    def redeliver(self, request, queryset):
        selected = queryset.count()
        failed = queryset.filter(state=DeliveryState.FAILED)
        left_failed = failed.filter(subscription__is_active=False).count()
        paused = failed.filter(subscription__is_active=True,
                               subscription__paused_until__gt=timezone.now()).count()  # fmt: skip
        queued = webhook_deliveries_redeliver(deliveries=queryset)
        message = f"{queued} delivery(ies) queued again"
        if paused:
            message += (f" ({paused} of a paused subscription: sent when its pause ends, or "
                        "at once if you resume it)")  # fmt: skip
        message += "; "
        if left_failed:
            message += (f"{left_failed} of an inactive subscription left failed (make it "
                        "active first); ")  # fmt: skip
        message += f"{selected - queued - left_failed} not failed, left as they were."
        level = messages.WARNING if left_failed or paused else messages.INFO
        messages.add_message(request, level, message)


class EventTypeFilter(admin.SimpleListFilter):
    """The registered event types: Django's own filter would read every event for the
    distinct values."""

    title = "type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in sorted(EVENT_TYPES)]

    def queryset(self, request, queryset):
        return queryset.filter(type=self.value()) if self.value() else queryset


class DeliveryInline(ReadOnly, admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    fields = ("subscription", "state", "attempts", "last_outcome", "delivered_at")
    readonly_fields = fields
    show_change_link = True


@admin.register(Event)
class EventAdmin(ReadOnly, LargeTableAdmin):
    list_display = ("id", "type", "created_at", "channel", "object_id")
    list_filter = (EventTypeFilter, "channel")
    # Newest first, in the feed's order: on the primary key, and filtered by a channel
    # on the feed's index (channel, id) (seq's order walked every event since a
    # channel's last one: 1.1 s for a channel of old events among a million).
    ordering = ("-id",)
    search_fields = ("id",)
    search_help_text = "A whole event id (evt_...)."
    fields = ("id", "type", "created_at", "channel", "object_id", "payload")
    readonly_fields = fields
    inlines = [DeliveryInline]


class RegisteredFilter(admin.SimpleListFilter):
    """A job column's values the worker's registered tasks name, `values(tasks)`:
    Django's own filter read every job for the distinct values."""

    def lookups(self, request, model_admin):
        return [(value, value) for value in sorted(self.values(task_queue.tasks.values()))]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.parameter_name: self.value()}) if self.value() else queryset


class JobQueueFilter(RegisteredFilter):
    title = "queue name"
    parameter_name = "queue_name"

    def values(self, tasks):
        return {task.queue for task in tasks}


class JobTaskFilter(RegisteredFilter):
    title = "task name"
    parameter_name = "task_name"

    def values(self, tasks):
        return {task.name for task in tasks}


# procrastinate's list counted every job, twice, and read every job for the distinct
# values of each of five filters: 0.77 s a page at 300,000 failed jobs (a receiver's
# backlog, kept ENDED_JOBS_KEPT_HOURS). Here it counts up to the cap, and filters by
# status, the registered queues and tasks, and when a job was scheduled; a lane's jobs
# (`lock`) have no filter.
admin.site.unregister(ProcrastinateJob)


@admin.register(ProcrastinateJob)
class JobAdmin(LargeTableAdmin, ProcrastinateJobAdmin):
    list_filter = ("status", JobQueueFilter, JobTaskFilter, "scheduled_at")
