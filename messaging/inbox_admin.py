"""The agents' inbox: customer replies Livra could not act on by itself, and the ones it did
(``outcome``: what was done with each).

Replies are written by the inbound webhook only; here agents read them and mark them handled
(``change_inboundmessage``), which records who did. Nothing else about a reply can be edited.
"""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from messaging.models import InboundMessage
from messaging.services.inbound import inbound_mark_handled
from orders.admin import PhoneSearchMixin
from orders.admin_scoping import StoreScopedAdmin

INBOX_FIELDS = (
    "received_at",
    "channel",
    "provider",
    "sender",
    "customer",
    "order",
    "text",
    "button_payload",
    "intent",
    "in_reply_to",
    "handled",
    "outcome",
    "handled_by",
    "provider_message_id",
    "webhook",
)


@admin.register(InboundMessage)
class InboundMessageAdmin(StoreScopedAdmin, PhoneSearchMixin, admin.ModelAdmin):
    # A reply from an unknown sender has no customer: its webhook's URL named the store.
    store_lookups = ("customer__store", "webhook__store")
    list_display = [
        "received_at",
        "channel",
        "customer_link",
        "order_link",
        "short_text",
        "intent",
        "handled",
        "short_outcome",
    ]
    list_filter = ["handled", "intent", "channel"]
    list_select_related = ["customer", "order"]
    search_fields = ["text", "sender", "order__number", "customer__name"]
    phone_search_field = "sender"
    date_hierarchy = "received_at"
    actions = ["mark_handled"]
    fields = readonly_fields = INBOX_FIELDS

    def has_add_permission(self, request):
        return False  # replies come from providers

    def has_delete_permission(self, request, obj=None):
        return False  # they are the record of what customers said

    @admin.display(description=_("customer"), ordering="customer__name")
    def customer_link(self, inbound: InboundMessage):
        if inbound.customer is None:
            return gettext("unknown sender")
        url = reverse("admin:orders_customer_change", args=[inbound.customer_id])
        return format_html('<a href="{}">{}</a>', url, inbound.customer.name)

    @admin.display(description=_("order"), ordering="order__number")
    def order_link(self, inbound: InboundMessage):
        if inbound.order is None:
            return "—"
        url = reverse("admin:orders_order_change", args=[inbound.order_id])
        return format_html('<a href="{}">{}</a>', url, inbound.order.number)

    @admin.display(description=_("text"))
    def short_text(self, inbound: InboundMessage):
        text = inbound.text or inbound.button_payload
        return format_html('<span dir="auto">{}</span>', Truncator(text).chars(80))

    @admin.display(description=_("outcome"))
    def short_outcome(self, inbound: InboundMessage):
        return Truncator(inbound.outcome).chars(80)

    @admin.action(description=_("Mark selected replies handled"), permissions=["change"])
    def mark_handled(self, request, queryset):
        count = inbound_mark_handled(queryset.values_list("pk", flat=True), actor=request.user)
        self.message_user(
            request,
            ngettext("%(count)s reply marked handled.", "%(count)s replies marked handled.", count)
            % {"count": count},
            messages.SUCCESS,
        )
