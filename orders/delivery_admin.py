"""The store inbox: every webhook delivery a store platform made, raw, and how processing went.

Deliveries are written by the webhook and the processing task only; they are the record of what
the platforms said, so nothing here adds, edits or deletes them. The one write is "Retry"
(``orders.retry_storedelivery``), which queues a failed, flagged or retrying delivery again at once
through ``orders.services.inbox.store_delivery_retry``. A delivery whose processing failed shows
its attempts and when it is tried again by itself ("retrying") until it is "failed" for a person.
"""

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from orders.admin import AMBER, BLUE, GREEN, GREY, INDIGO, RED, ReadOnlyAdminMixin
from orders.admin_scoping import StoreScopedAdmin
from orders.models import StoreDelivery
from orders.services.inbox import RETRYABLE, store_delivery_retry
from orders.services.ingest import MAX_ATTEMPTS

D = StoreDelivery.Status
DELIVERY_STATUS_COLOURS = {
    D.RECEIVED: BLUE,
    D.PROCESSED: GREEN,
    D.SKIPPED: GREY,
    D.FLAGGED: AMBER,
    D.RETRYING: INDIGO,
    D.FAILED: RED,
}
RETRY_PERMISSION = "orders.retry_storedelivery"
PRE_STYLE = "white-space:pre-wrap;word-break:break-word;max-height:40em;overflow:auto;margin:0"


def delivery_status_badge(delivery: StoreDelivery) -> str:
    return format_html(
        '<span class="delivery-status-badge" style="background:{};color:#fff;padding:2px 8px;'
        'border-radius:10px;white-space:nowrap">{}</span>',
        DELIVERY_STATUS_COLOURS.get(delivery.status, GREY),
        delivery.status_word,
    )


def body_as_text(body: bytes) -> str:
    """The raw body for a human: indented JSON when it parses, else UTF-8 with replacements."""
    raw = bytes(body or b"")
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError), or absurdly deep
        return raw.decode("utf-8", errors="replace")


def preformatted(text: str, css_class: str) -> str:
    return format_html('<pre class="{}" dir="auto" style="{}">{}</pre>', css_class, PRE_STYLE, text)


@admin.register(StoreDelivery)
class StoreDeliveryAdmin(StoreScopedAdmin, ReadOnlyAdminMixin, admin.ModelAdmin):
    change_form_template = "admin/orders/storedelivery/change_form.html"
    list_display = [
        "id",
        "received_at",
        "store",
        "platform",
        "topic",
        "status_badge",
        "order_link",
        "attempts",
        "next_retry",
        "short_note",
    ]
    list_display_links = ["id", "received_at"]
    list_filter = ["platform", "topic", "status", "store"]
    list_select_related = ["store", "order"]
    search_fields = ["idempotency_key", "order__number"]
    search_help_text = _("The platform's delivery or event id, or an order number.")
    date_hierarchy = "received_at"
    actions = ["retry_deliveries"]
    fieldsets = [
        (None, {"fields": ["store", "platform", "topic", "idempotency_key", "received_at"]}),
        (
            pgettext_lazy("store delivery", "Processing"),
            {
                "fields": [
                    "status_badge",
                    "order_link",
                    "attempts",
                    "next_retry",
                    "processed_at",
                    "notes_list",
                    "error",
                    "trace",
                ]
            },
        ),
        (_("As received"), {"fields": ["headers_block", "raw_body"]}),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def get_queryset(self, request):
        # Bodies run to a megabyte: a list page loads none of them, the detail page only its own.
        return super().get_queryset(request).defer("body", "headers", "error_trace")

    # --- columns and panels --------------------------------------------------------------
    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, delivery: StoreDelivery):
        return delivery_status_badge(delivery)

    @admin.display(description=_("order"), ordering="order__number")
    def order_link(self, delivery: StoreDelivery):
        if delivery.order_id is None:
            return "—"
        url = reverse(f"{self.admin_site.name}:orders_order_change", args=[quote(delivery.order_id)])
        return format_html('<a href="{}">{}</a>', url, delivery.order.number)

    @admin.display(description=_("next retry"), ordering="next_attempt_at")
    def next_retry(self, delivery: StoreDelivery):
        if delivery.status != D.RETRYING or delivery.next_attempt_at is None:
            return "—"
        when = date_format(timezone.localtime(delivery.next_attempt_at), "DATETIME_FORMAT")
        return gettext("%(when)s (attempt %(attempt)s of %(max_attempts)s)") % {
            "when": when,
            "attempt": delivery.attempts + 1,
            "max_attempts": MAX_ATTEMPTS,
        }

    @admin.display(description=_("note"))
    def short_note(self, delivery: StoreDelivery):
        text = delivery.error or "; ".join(str(note) for note in delivery.notes or [])
        return Truncator(text).chars(80) if text else ""

    @admin.display(description=_("notes"))
    def notes_list(self, delivery: StoreDelivery):
        if not delivery.notes:
            return "—"
        return format_html(
            '<ul class="delivery-notes">{}</ul>',
            format_html_join("", "<li>{}</li>", ((str(note),) for note in delivery.notes)),
        )

    @admin.display(description=_("stack trace"))
    def trace(self, delivery: StoreDelivery):
        return preformatted(delivery.error_trace, "delivery-trace") if delivery.error_trace else "—"

    @admin.display(description=_("headers"))
    def headers_block(self, delivery: StoreDelivery):
        return preformatted(json.dumps(delivery.headers, indent=2, ensure_ascii=False), "delivery-headers")

    @admin.display(description=_("body"))
    def raw_body(self, delivery: StoreDelivery):
        return preformatted(body_as_text(delivery.body), "delivery-body")

    # --- retry ---------------------------------------------------------------------------
    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm(RETRY_PERMISSION)

    @admin.action(
        description=_("Retry the selected failed, flagged or retrying deliveries now"), permissions=["retry"]
    )
    def retry_deliveries(self, request, queryset):
        self.retry_and_report(request, list(queryset.order_by("pk")))

    def retry_and_report(self, request, deliveries: list[StoreDelivery]) -> None:
        retried, skipped = [], []
        for delivery in deliveries:
            (retried if store_delivery_retry(delivery, actor=request.user) else skipped).append(delivery)
        if retried:
            queued = ", ".join(f"#{d.pk}" for d in retried)
            self.message_user(
                request,
                gettext("Queued again: %(deliveries)s.") % {"deliveries": queued},
                messages.SUCCESS,
            )
        if skipped:
            listed = ", ".join(f"#{d.pk} ({d.status_word})" for d in skipped)
            self.message_user(
                request,
                gettext("Skipped, not failed, flagged or retrying: %(deliveries)s.") % {"deliveries": listed},
                messages.WARNING,
            )

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        custom = [
            path(
                "<path:object_id>/retry/",
                self.admin_site.admin_view(self.retry_view),
                name="{}_{}_retry".format(*info),
            )
        ]
        return custom + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        if self.has_retry_permission(request):
            extra_context["retry_url"] = reverse(
                f"{self.admin_site.name}:orders_storedelivery_retry", args=[object_id]
            )
            extra_context["retryable_statuses"] = sorted(RETRYABLE)
        return super().change_view(request, object_id, form_url, extra_context)

    def retry_view(self, request, object_id):
        """POST: queue one failed, flagged or retrying delivery again (the detail page's Retry button)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_view_permission(request) and self.has_retry_permission(request)):
            raise PermissionDenied
        delivery = self.get_object(request, unquote(object_id))
        if delivery is None:
            raise Http404("No such delivery.")
        self.retry_and_report(request, [delivery])
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:orders_storedelivery_change", args=[quote(delivery.pk)])
        )
