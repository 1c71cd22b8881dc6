"""Messaging admin: the outbox (read-only, with resend), templates with a live preview, per-store
settings and providers, consent with its evidence, and the raw provider webhooks.

Rows written by the outbox, receipts and webhooks are read-only here; the only writes are
templates, settings, providers, and two agent actions that go through services: recording a
consent (``consent_record``) and resending a message (``message_resend``).
"""

import json

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from django_celery_results.models import GroupResult, TaskResult

from messaging.forms import (
    ChannelProviderForm,
    ConsentRecordForm,
    MessageTemplateForm,
    MessagingSettingsForm,
    TemplatePreviewForm,
    text_direction,
)
from messaging.models import (
    Channel,
    ChannelProvider,
    Consent,
    ConsentEvent,
    Message,
    MessageAttempt,
    MessageStatusChange,
    MessageTemplate,
    MessagingSettings,
    Notification,
    ProviderWebhook,
    default_channel_order,
)
from messaging.services.consent import consent_record
from messaging.services.resend import RESEND_PERMISSION, ResendRefused, message_resend, resend_problem
from messaging.services.routing import contact_point
from messaging.webhook_masking import body_for_display, mask_in_text, masked_headers

# orders.admin also registers OrderAdmin, which the inline below joins.
from orders.admin import PhoneSearchMixin, ReadOnlyAdminMixin
from orders.admin_scoping import StoreScopedAdmin, StoreScopedInline, scope_to_stores
from orders.models import Customer, Order, Store

PRE_STYLE = "white-space:pre-wrap;word-break:break-word;max-height:40em;overflow:auto;margin:0"
MESSAGE_FIELDS = (
    "order",
    "customer",
    "event",
    "channel",
    "provider",
    "recipient",
    "status",
    "provider_message_id",
    "attempts",
    "error_code",
    "error",
    "fallback_from",
    "fallback_reason",
    "subject",
    "body",
    "idempotency_key",
    "created_at",
    "sent_at",
    "delivered_at",
    "failed_at",
)


def resend_url(*message_ids: int) -> str:
    return f"{reverse('admin:messaging_message_resend')}?ids={','.join(map(str, message_ids))}"


def message_link(message: Message) -> str:
    url = reverse("admin:messaging_message_change", args=[quote(message.pk)])
    return format_html(
        '<a href="{}">#{}</a> {} ({})',
        url,
        message.pk,
        Channel(message.channel).label,
        message.get_status_display(),
    )


# --- the outbox ------------------------------------------------------------------------------
class MessageStatusChangeInline(StoreScopedInline, ReadOnlyAdminMixin, admin.TabularInline):
    model = MessageStatusChange
    verbose_name_plural = _("status history")
    fields = readonly_fields = ("at", "from_status_shown", "to_status_shown", "source_shown", "detail_shown")
    extra = 0
    can_delete = False

    @admin.display(description=_("from status"))
    def from_status_shown(self, change: MessageStatusChange) -> str:
        return change.from_status_words

    @admin.display(description=_("to status"))
    def to_status_shown(self, change: MessageStatusChange) -> str:
        return change.to_status_words

    # The technical trail (what recorded the change, a provider's error) is recorded in English.
    @admin.display(description=_("source"))
    def source_shown(self, change: MessageStatusChange) -> str:
        return format_html('<span lang="en">{}</span>', change.source)

    @admin.display(description=_("detail"))
    def detail_shown(self, change: MessageStatusChange) -> str:
        return format_html('<span lang="en">{}</span>', change.detail) if change.detail else "-"


class MessageAttemptInline(StoreScopedInline, ReadOnlyAdminMixin, admin.TabularInline):
    model = MessageAttempt
    verbose_name_plural = _("provider calls")
    fields = readonly_fields = (
        "number",
        "provider",
        "outcome",
        "provider_message_id",
        "error_code",
        "error",
        "retry_after_seconds",
        "started_at",
        "finished_at",
    )
    extra = 0
    can_delete = False


@admin.register(Message)
class MessageAdmin(StoreScopedAdmin, ReadOnlyAdminMixin, admin.ModelAdmin):
    store_lookups = ("order__store",)
    list_display = [
        "created_at",
        "order",
        "event",
        "channel",
        "provider",
        "status",
        "error_code",
        "attempts",
        "sent_at",
    ]
    list_filter = ["status", "channel", "provider", "event"]
    list_select_related = ["order__store"]
    search_fields = ["order__number", "provider_message_id", "idempotency_key"]
    date_hierarchy = "created_at"
    fields = readonly_fields = MESSAGE_FIELDS
    inlines = [MessageStatusChangeInline, MessageAttemptInline]
    actions = ["resend_messages"]
    change_form_template = "admin/messaging/message/change_form.html"

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm(RESEND_PERMISSION)

    @admin.action(description=_("Resend the selected messages…"), permissions=["resend"])
    def resend_messages(self, request, queryset):
        # The reason is asked for on the confirmation page, which posts to resend_view.
        return HttpResponseRedirect(resend_url(*queryset.values_list("pk", flat=True)))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_resend": self.has_resend_permission(request)}
        if extra_context["can_resend"]:
            extra_context["resend_url"] = resend_url(object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        custom = [
            path("resend/", self.admin_site.admin_view(self.resend_view), name="messaging_message_resend"),
        ]
        return custom + super().get_urls()

    def resend_view(self, request):
        """GET: which messages, and a reason box. POST: resend each through ``message_resend``."""
        if not (self.has_view_permission(request) and self.has_resend_permission(request)):
            raise PermissionDenied
        raw_ids = (
            request.POST.getlist("ids") if request.method == "POST" else request.GET.get("ids", "").split(",")
        )
        ids = [int(value) for value in raw_ids if value.strip().isdigit()]
        chosen = list(
            self.get_queryset(request).filter(pk__in=ids).select_related("order", "customer").order_by("pk")
        )
        if not chosen:
            messages.error(request, gettext("No message was chosen to resend."))
            return HttpResponseRedirect(reverse("admin:messaging_message_changelist"))
        orders = {message.order_id for message in chosen}
        back = (
            reverse("admin:orders_order_change", args=[quote(chosen[0].order_id)])
            if len(orders) == 1
            else reverse("admin:messaging_message_changelist")
        )
        reason = request.POST.get("reason", "").strip()
        error = ""
        if request.method == "POST":
            if reason:
                self._resend_all(request, chosen, reason)
                return HttpResponseRedirect(back)
            error = gettext("Say why the message is resent: the reason goes on the order's timeline.")
        context = {
            **self.admin_site.each_context(request),
            "title": (
                gettext("Resend messages")
                if len(chosen) > 1
                else gettext("Resend message #%(id)s") % {"id": chosen[0].pk}
            ),
            "opts": self.opts,
            "rows": [
                {
                    "message": message,
                    "problem": resend_problem(message),
                    "to": contact_point(message.customer, message.channel),
                }
                for message in chosen
            ],
            "reason": reason,
            "error": error,
            "back_url": back,
        }
        return TemplateResponse(
            request, "admin/messaging/message/resend.html", context, status=400 if error else 200
        )

    def _resend_all(self, request, chosen: list[Message], reason: str) -> None:
        for message in chosen:
            try:
                resent = message_resend(message, actor=request.user, reason=reason)
            except ResendRefused as refused:
                messages.error(
                    request, gettext("Message #%(id)s: %(problem)s") % {"id": message.pk, "problem": refused}
                )
            else:
                messages.success(
                    request,
                    gettext("Message #%(id)s is queued again on %(channel)s as #%(new_id)s.")
                    % {"id": message.pk, "channel": resent.channel, "new_id": resent.pk},
                )


class MessageInline(StoreScopedInline, ReadOnlyAdminMixin, admin.TabularInline):
    """The order page's ops view of its messages: status, error, history, fallback chain, resend."""

    model = Message
    verbose_name_plural = _("messages to the customer")
    # The order page already says which order and customer; bodies are read on the message page.
    fields = (
        "message",
        "event",
        "channel",
        "provider",
        "status",
        "provider_message_id",
        "attempts",
        "error_code",
        "error",
        "created_at",
        "sent_at",
        "status_history",
        "fallback_chain",
    )
    readonly_fields = (*fields, "resend")
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        # One query each for the histories and the fallbacks of all the order's messages.
        return (
            super()
            .get_queryset(request)
            .select_related("fallback_from")
            .prefetch_related("status_changes", "fallbacks")
        )

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if request.user.has_perm(RESEND_PERMISSION):
            fields.append("resend")
        return fields

    @admin.display(description=_("message"))
    def message(self, message):
        return message_link(message) if message.pk else "-"

    @admin.display(description=_("status history"))
    def status_history(self, message):
        return render_to_string(
            "admin/messaging/message/status_history.html", {"changes": message.status_changes.all()}
        )

    @admin.display(description=_("fallback chain"))
    def fallback_chain(self, message):
        before = message.fallback_from
        parts = []
        if before is not None:
            parts.append(
                format_html(
                    gettext("after {message}: {reason}"),
                    message=message_link(before),
                    reason=message.fallback_reason or "-",
                )
            )
        parts += [
            format_html(gettext("then {message}"), message=message_link(after))
            for after in message.fallbacks.all()
        ]
        return format_html_join(mark_safe("<br>"), "{}", ((part,) for part in parts)) if parts else "-"

    @admin.display(description=_("resend"))
    def resend(self, message):
        if not message.pk or resend_problem(message):
            return "-"
        return format_html(
            '<a class="button message-resend" href="{}">{}</a>', resend_url(message.pk), gettext("Resend…")
        )


class NotificationMessageInline(MessageInline):
    fk_name = "notification"
    verbose_name_plural = _("messages, channel by channel")


@admin.register(Notification)
class NotificationAdmin(StoreScopedAdmin, ReadOnlyAdminMixin, admin.ModelAdmin):
    store_lookups = ("order__store",)
    list_display = ["created_at", "order", "event", "purpose", "urgent", "channels", "status", "routing_note"]
    list_filter = ["status", "event", "purpose", "urgent"]
    list_select_related = ["order__store"]
    search_fields = ["order__number", "idempotency_key"]
    date_hierarchy = "created_at"
    fields = readonly_fields = (
        "order",
        "customer",
        "event",
        "purpose",
        "urgent",
        "channels",
        "status",
        "routing_note",
        "idempotency_key",
        "created_at",
    )
    inlines = [NotificationMessageInline]


# --- templates -------------------------------------------------------------------------------
@admin.register(MessageTemplate)
class MessageTemplateAdmin(StoreScopedAdmin, admin.ModelAdmin):
    # The defaults (no store) are every store's: members read them, superusers edit them.
    shared_rows_lookup = "store"
    form = MessageTemplateForm
    change_form_template = "admin/messaging/messagetemplate/change_form.html"
    list_display = ["event", "channel", "language", "store_name", "purpose", "text_start", "updated_at"]
    list_filter = ["event", "channel", "language", "store", "purpose"]
    list_select_related = ["store"]
    search_fields = ["subject", "body", "whatsapp_template_name"]
    ordering = ["event", "channel", "language", "store__name"]
    fieldsets = [
        (None, {"fields": ["store", "event", "channel", "language", "purpose"]}),
        (_("Text"), {"fields": ["subject", "body"]}),
        (
            _("Provider templates"),
            {
                "fields": [
                    "whatsapp_template_name",
                    "whatsapp_language_code",
                    "body_parameters",
                    "buttons",
                    "twilio_content_sid",
                    "sendgrid_template_id",
                ],
                "description": _("Pre-approved templates some providers require outside a conversation."),
            },
        ),
        (
            pgettext_lazy("fieldset title: when the row was written", "Record"),
            {"fields": ["updated_at"], "classes": ["collapse"]},
        ),
    ]
    readonly_fields = ["updated_at"]

    @admin.display(description=_("store"), ordering="store__name")
    def store_name(self, template):
        return template.store.name if template.store else gettext("Default (every store)")

    @admin.display(description=_("text"))
    def text_start(self, template):
        return format_html(
            '<span dir="{}" lang="{}">{}</span>',
            text_direction(template.language),
            template.language,
            Truncator(template.body).chars(70),
        )

    def get_urls(self):
        custom = [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="messaging_messagetemplate_preview",
            )
        ]
        return custom + super().get_urls()

    def preview_view(self, request):
        """The change form's text, unsaved, rendered for one order: an HTML fragment for fetch()."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        # The preview shows an order's customer and items: it needs both permissions.
        if not (self.has_view_permission(request) and request.user.has_perm("orders.view_order")):
            raise PermissionDenied
        data = request.POST.copy()
        template_id = data.get("template", "")
        templates = self.get_queryset(request)
        saved = templates.filter(pk=int(template_id)).first() if template_id.isdigit() else None
        if saved is not None and "body" not in data:
            # A view-only change page has no inputs: preview the saved text.
            for name in ("store", "language", "subject", "body"):
                data.setdefault(name, getattr(saved, f"{name}_id" if name == "store" else name) or "")
            data.setdefault("body_parameters", json.dumps(saved.body_parameters))
        form = TemplatePreviewForm(
            data, orders=scope_to_stores(Order.objects.all(), request.user, ("store",))
        )
        template = "admin/messaging/messagetemplate/preview.html"
        if not form.is_valid():
            errors = [
                f"{form.fields[name].label or name}: {' '.join(problems)}"
                for name, problems in form.errors.items()
            ]
            return TemplateResponse(request, template, {"errors": errors}, status=400)
        return TemplateResponse(request, template, form.preview())


# --- per-store settings ----------------------------------------------------------------------
@admin.register(MessagingSettings)
class MessagingSettingsAdmin(StoreScopedAdmin, admin.ModelAdmin):
    form = MessagingSettingsForm
    list_display = ["store", "channel_order", "transactional_policy", "quiet_hours_start", "quiet_hours_end"]
    list_filter = ["transactional_policy"]
    list_select_related = ["store"]
    search_fields = ["store__name", "store__slug"]


@admin.register(ChannelProvider)
class ChannelProviderAdmin(StoreScopedAdmin, admin.ModelAdmin):
    form = ChannelProviderForm
    list_display = ["store", "channel", "provider", "sender", "credentials_env_prefix", "enabled"]
    list_filter = ["channel", "provider", "enabled"]
    list_select_related = ["store"]
    search_fields = ["store__name", "store__slug", "provider"]


# --- consent ---------------------------------------------------------------------------------
@admin.register(Consent)
class ConsentAdmin(StoreScopedAdmin, PhoneSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    store_lookups = ("customer__store",)
    """Where customers stand, read-only; agents record a change (with a reason) through the service."""

    phone_search_field = "customer__phone"
    list_display = ["customer", "channel", "status", "marketing", "source", "recorded_at", "recorded_by"]
    list_filter = ["channel", "status", "marketing", "source"]
    list_select_related = ["customer", "recorded_by"]
    search_fields = ["customer__name", "customer__phone", "customer__email"]
    date_hierarchy = "recorded_at"
    fields = (
        "customer",
        "channel",
        "status",
        "marketing",
        "source",
        "recorded_at",
        "recorded_by",
        "evidence",
        "history",
    )
    readonly_fields = (*fields, "record_a_change")

    def has_add_permission(self, request, obj=None):
        return request.user.has_perm("messaging.add_consent")

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is not None and self.has_add_permission(request):
            fields.append("record_a_change")
        return fields

    @admin.display(description=_("history"))
    def history(self, consent):
        events = ConsentEvent.objects.filter(customer_id=consent.customer_id, channel=consent.channel)
        return render_to_string(
            "admin/messaging/consent/history.html", {"events": events.select_related("recorded_by")}
        )

    @admin.display(description=_("record a change"))
    def record_a_change(self, consent):
        url = reverse("admin:messaging_consent_add")
        return format_html(
            '<a class="button" href="{}?customer={}&amp;channel={}">{}</a>',
            url,
            consent.customer_id,
            consent.channel,
            gettext("Record an opt-in or opt-out…"),
        )

    def add_view(self, request, form_url="", extra_context=None):
        """ "Add consent" records one through ``consent_record``, as the agent, with the reason."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {
            name: request.GET[name] for name in ("customer", "channel", "status") if name in request.GET
        }
        form = ConsentRecordForm(
            request.POST if request.method == "POST" else None,
            initial=initial,
            admin_site=self.admin_site,
            customers=scope_to_stores(Customer.objects.all(), request.user, ("store",)),
        )
        if form.is_valid():
            consent = consent_record(
                form.cleaned_data["customer"],
                form.cleaned_data["channel"],
                form.cleaned_data["status"],
                source=Consent.Source.AGENT,
                marketing=form.marketing_value(),
                actor=request.user,
                evidence={"reason": form.cleaned_data["reason"]},
            )
            messages.success(
                request,
                gettext("Recorded: %(customer)s is now %(status)s on %(channel)s.")
                % {
                    "customer": consent.customer,
                    "status": consent.get_status_display().lower(),
                    "channel": consent.channel,
                },
            )
            return HttpResponseRedirect(reverse("admin:messaging_consent_change", args=[quote(consent.pk)]))
        adminform = helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {})
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Record a consent change"),
            "opts": self.opts,
            "adminform": adminform,
            "errors": helpers.AdminErrorList(form, []) if form.is_bound else [],
            "media": self.media + adminform.media,
        }
        return TemplateResponse(request, "admin/messaging/consent/record.html", context)


# --- what providers sent ---------------------------------------------------------------------
PII_PERMISSION = "messaging.view_pii"


@admin.register(ProviderWebhook)
class ProviderWebhookAdmin(StoreScopedAdmin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The requests providers made, as received. Account ids, phone numbers, e-mail addresses,
    names and message text in them are masked for users without ``messaging.view_pii``."""

    list_display = ["received_at", "store", "provider", "kind", "flagged", "flag_reason", "processed_at"]
    list_filter = ["provider", "kind", "flagged", "store"]
    list_select_related = ["store"]
    search_fields = ["dedup_key", "flag_reason"]
    date_hierarchy = "received_at"
    fields = readonly_fields = (
        "store",
        "provider",
        "kind",
        "dedup_key",
        "received_at",
        "processed_at",
        "flagged",
        "flag_reason",
        "headers_full",
        "body_full",
    )
    # Shown instead of their *_full twins to users without the permission (per request: one
    # admin instance serves every user, so nothing about the user is kept on it).
    MASKED = {
        "flag_reason": "flag_reason_masked",
        "headers_full": "headers_masked",
        "body_full": "body_masked",
    }

    def _for(self, request, names) -> list[str]:
        if request.user.has_perm(PII_PERMISSION):
            return list(names)
        return [self.MASKED.get(name, name) for name in names]

    def get_list_display(self, request):
        return self._for(request, super().get_list_display(request))

    def get_fields(self, request, obj=None):
        return self._for(request, super().get_fields(request, obj))

    def get_readonly_fields(self, request, obj=None):
        return self._for(request, super().get_readonly_fields(request, obj))

    @admin.display(description=_("flag reason"))
    def flag_reason_masked(self, webhook: ProviderWebhook):
        return mask_in_text(webhook.flag_reason)

    @admin.display(description=_("headers"))
    def headers_full(self, webhook: ProviderWebhook):
        return _preformatted_json(webhook.headers, "webhook-headers")

    @admin.display(description=_("headers"))
    def headers_masked(self, webhook: ProviderWebhook):
        return _preformatted_json(masked_headers(webhook.headers), "webhook-headers")

    @admin.display(description=_("body"))
    def body_full(self, webhook: ProviderWebhook):
        return _preformatted(body_for_display(webhook.body, masked=False), "webhook-body")

    @admin.display(description=_("body"))
    def body_masked(self, webhook: ProviderWebhook):
        return _preformatted(body_for_display(webhook.body, masked=True), "webhook-body")


def _preformatted(text: str, css_class: str) -> str:
    return format_html('<pre class="{}" dir="auto" style="{}">{}</pre>', css_class, PRE_STYLE, text)


def _preformatted_json(data, css_class: str) -> str:
    return _preformatted(json.dumps(data, indent=2, ensure_ascii=False), css_class)


# --- the store page: which provider sends each channel ----------------------------------------
@admin.display(description=_("channels"))
def channel_providers_panel(store: Store) -> str:
    """Each channel the store routes, with its provider, or a warning that nothing sends it."""
    settings = MessagingSettings.objects.filter(store=store).first()
    routed = settings.channel_order if settings else default_channel_order()
    providers = {row.channel: row for row in ChannelProvider.objects.filter(store=store, enabled=True)}
    rows = [
        {
            "channel": Channel(channel).label if channel in Channel.values else channel,
            "provider": providers.get(channel),
            "add_url": f"{reverse('admin:messaging_channelprovider_add')}?store={store.pk}&channel={channel}",
        }
        for channel in routed
    ]
    return render_to_string("admin/messaging/store_channel_providers.html", {"rows": rows})


# Orders never imports messaging (messaging listens to orders), so messaging adds its inline to
# the order page and its panel to the store page itself, the same way its signal receiver
# attaches to order transitions.
_order_admin = admin.site.get_model_admin(Order)
_order_admin.inlines = [*_order_admin.inlines, MessageInline]
_store_admin = admin.site.get_model_admin(Store)
_store_admin.panels = [*_store_admin.panels, (_("Messaging providers"), channel_providers_panel)]

# django-celery-results keeps the sandbox phone's reply states (the phone page shows them); its
# own admin pages would only add a list of raw task results to every staff member's menu.
admin.site.unregister([TaskResult, GroupResult])

# The agents' inbox of customer replies lives in its own module; importing it registers it.
import messaging.inbox_admin  # noqa: E402, F401
