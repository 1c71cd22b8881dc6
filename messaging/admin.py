"""Read-only admin for the outbox: messages are written by the status seam and the send task only."""

from django.contrib import admin

from messaging.models import Message
from orders.admin import ReadOnlyAdminMixin  # also registers OrderAdmin, which the inline joins
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
    # The order page already says which order and customer; bodies are read on the message page.
    fields = readonly_fields = tuple(
        name for name in MESSAGE_FIELDS if name not in {"order", "customer", "body", "idempotency_key"}
    )
    extra = 0
    can_delete = False


# Orders never imports messaging (messaging listens to orders), so messaging adds its inline to
# the order page itself, the same way its signal receiver attaches to order transitions.
_order_admin = admin.site.get_model_admin(Order)
_order_admin.inlines = [*_order_admin.inlines, MessageInline]
