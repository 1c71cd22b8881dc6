"""Read-only admin for the outbox: messages are written by the status seam and the send task only."""

from django.contrib import admin

import orders.admin  # noqa: F401 - registers OrderAdmin, which the inline below joins
from messaging.models import Message
from orders.models import Order

MESSAGE_FIELDS = (
    "order",
    "customer",
    "event",
    "channel",
    "provider",
    "status",
    "provider_message_id",
    "attempts",
    "error",
    "body",
    "idempotency_key",
    "created_at",
    "sent_at",
)


class ReadOnlyAdminMixin:
    """Visible to whoever may view messages; nobody adds, changes or deletes them here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "order", "event", "channel", "provider", "status", "attempts", "sent_at"]
    list_filter = ["status", "channel", "provider", "event"]
    list_select_related = ["order__store"]
    search_fields = ["order__number", "provider_message_id", "idempotency_key"]
    date_hierarchy = "created_at"
    fields = readonly_fields = MESSAGE_FIELDS


class MessageInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The messages sent about an order, shown on the order page under its timeline."""

    model = Message
    verbose_name_plural = "messages to the customer"
    fields = readonly_fields = (
        "created_at",
        "event",
        "channel",
        "provider",
        "status",
        "provider_message_id",
        "attempts",
        "error",
        "sent_at",
    )
    extra = 0
    can_delete = False


# Orders never imports messaging (messaging listens to orders), so messaging adds its inline to
# the order page itself, the same way its signal receiver attaches to order transitions.
_order_admin = admin.site.get_model_admin(Order)
_order_admin.inlines = [*_order_admin.inlines, MessageInline]
