"""Messaging data: consent, per-store channel settings, templates, the outbox and what came back."""

import datetime

from django.conf import settings
from django.db import models
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    WHATSAPP = "whatsapp", "WhatsApp"
    SMS = "sms", "SMS"
    EMAIL = "email", _("E-mail")


class Purpose(models.TextChoices):
    TRANSACTIONAL = "transactional", _("Transactional (about an order)")
    MARKETING = "marketing", _("Marketing")


# --- Consent ---------------------------------------------------------------------------------
class Consent(models.Model):
    """Where a customer stands on one channel now. Its history is in ConsentEvent."""

    class Status(models.TextChoices):
        OPTED_IN = "opted_in", _("Opted in")
        OPTED_OUT = "opted_out", _("Opted out")

    class Source(models.TextChoices):
        CHECKOUT = "checkout", _("Checkout")
        STORE_WEBHOOK = "store_webhook", _("Store webhook field")
        CUSTOMER_REPLY = "customer_reply", _("Customer reply")
        PROVIDER = "provider", _("Provider opt-out error")
        AGENT = "agent", _("Agent")
        API = "api", "API"

    customer = models.ForeignKey(
        "orders.Customer", on_delete=models.CASCADE, related_name="consents", verbose_name=_("customer")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    # Marketing needs its own explicit yes; an opt-out stops both kinds.
    marketing = models.BooleanField(_("marketing"), default=False)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    recorded_at = models.DateTimeField(_("recorded at"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel"], name="consent_one_per_channel")
        ]

    def __str__(self) -> str:
        return f"{self.channel}: {self.get_status_display()}"


class ConsentEvent(models.Model):
    """Append-only evidence: every consent change, with who or what caused it."""

    customer = models.ForeignKey(
        "orders.Customer", on_delete=models.CASCADE, related_name="consent_events", verbose_name=_("customer")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    status = models.CharField(_("status"), max_length=20, choices=Consent.Status.choices)
    marketing = models.BooleanField(_("marketing"), default=False)
    source = models.CharField(_("source"), max_length=20, choices=Consent.Source.choices)
    recorded_at = models.DateTimeField(_("recorded at"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        ordering = ["recorded_at", "id"]

    def __str__(self) -> str:
        return f"{self.channel}: {self.status} ({self.source})"


# --- Per-store settings ----------------------------------------------------------------------
def default_channel_order() -> list[str]:
    return [Channel.WHATSAPP, Channel.SMS, Channel.EMAIL]


def default_receipt_timeouts() -> dict[str, int]:
    # Seconds to wait for a delivery receipt on urgent messages before trying the next channel.
    return {Channel.WHATSAPP: 600, Channel.SMS: 900, Channel.EMAIL: 1800}


class MessagingSettings(models.Model):
    class TransactionalPolicy(models.TextChoices):
        IMPLIED = "implied", _("Contact given at checkout is enough, until the customer opts out")
        EXPLICIT = "explicit", _("Only channels the customer explicitly opted into")

    store = models.OneToOneField(
        "orders.Store", on_delete=models.CASCADE, related_name="messaging_settings", verbose_name=_("store")
    )
    channel_order = models.JSONField(
        _("channel order"), default=default_channel_order, help_text=_('e.g. ["whatsapp", "sms", "email"]')
    )
    transactional_policy = models.CharField(
        _("transactional policy"),
        max_length=10,
        choices=TransactionalPolicy.choices,
        default=TransactionalPolicy.IMPLIED,
    )
    quiet_hours_start = models.TimeField(
        _("quiet hours start"), null=True, blank=True, default=datetime.time(21, 0)
    )
    quiet_hours_end = models.TimeField(
        _("quiet hours end"), null=True, blank=True, default=datetime.time(9, 0)
    )
    receipt_timeouts = models.JSONField(
        _("receipt timeouts"), default=default_receipt_timeouts, help_text=_("seconds per channel")
    )

    class Meta:
        verbose_name = _("messaging settings")
        verbose_name_plural = _("messaging settings")

    def __str__(self) -> str:
        return gettext("Messaging settings of %(store)s") % {"store": self.store}


class ChannelProvider(models.Model):
    """Which provider sends a store's messages on a channel. Credentials stay in the environment."""

    store = models.ForeignKey(
        "orders.Store", on_delete=models.CASCADE, related_name="channel_providers", verbose_name=_("store")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    provider = models.CharField(
        _("provider"), max_length=30, help_text=_("registered provider name, e.g. twilio_sms")
    )
    sender = models.CharField(
        _("sender"),
        max_length=100,
        blank=True,
        help_text=_("From number, WhatsApp phone number id or sender e-mail"),
    )
    credentials_env_prefix = models.CharField(
        _("credentials env prefix"),
        max_length=60,
        blank=True,
        help_text=_("Credentials are read from environment variables starting with this, e.g. LIVRA_TWILIO"),
    )
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("channel provider")
        verbose_name_plural = _("channel providers")
        constraints = [
            models.UniqueConstraint(fields=["store", "channel"], name="one_provider_per_store_channel")
        ]

    def __str__(self) -> str:
        return gettext("%(store)s %(channel)s via %(provider)s") % {
            "store": self.store,
            "channel": self.channel,
            "provider": self.provider,
        }


# --- Templates -------------------------------------------------------------------------------
class MessageTemplate(models.Model):
    store = models.ForeignKey(
        "orders.Store",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        verbose_name=_("store"),
        help_text=_("Empty: every store's default"),
    )
    event = models.CharField(_("event"), max_length=50)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    language = models.CharField(_("language"), max_length=2)
    purpose = models.CharField(
        _("purpose"), max_length=20, choices=Purpose.choices, default=Purpose.TRANSACTIONAL
    )
    subject = models.CharField(
        _("subject"), max_length=200, blank=True, help_text=_("E-mail subject; placeholders allowed")
    )
    body = models.TextField(_("body"), help_text=_("Text with placeholders, e.g. {customer_name}"))
    # WhatsApp (Meta Cloud API): the approved template and its ordered body parameters.
    whatsapp_template_name = models.CharField(_("WhatsApp template name"), max_length=100, blank=True)
    whatsapp_language_code = models.CharField(_("WhatsApp language code"), max_length=10, blank=True)
    body_parameters = models.JSONField(
        _("body parameters"),
        default=list,
        blank=True,
        help_text=_('ordered placeholders, e.g. ["order_number"]'),
    )
    buttons = models.JSONField(
        _("buttons"),
        default=list,
        blank=True,
        help_text=_('quick replies: [{"id": "confirm", "title": "…"}]'),
    )
    # Twilio WhatsApp templates (Content API) and SendGrid dynamic templates.
    twilio_content_sid = models.CharField(_("Twilio content SID"), max_length=40, blank=True)
    sendgrid_template_id = models.CharField(_("SendGrid template id"), max_length=60, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        constraints = [
            models.UniqueConstraint(
                fields=["store", "event", "channel", "language"],
                condition=models.Q(store__isnull=False),
                name="one_template_per_store_event_channel_language",
            ),
            models.UniqueConstraint(
                fields=["event", "channel", "language"],
                condition=models.Q(store__isnull=True),
                name="one_default_template_per_event_channel_language",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} / {self.channel} / {self.language}"


# --- Outbox ----------------------------------------------------------------------------------
class Notification(models.Model):
    """One thing to tell a customer (an order event), tried channel by channel until delivered."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("notification status", "Pending")
        DELIVERED = "delivered", pgettext_lazy("notification status", "Delivered")
        EXHAUSTED = "exhausted", _("Every channel failed")
        NO_CHANNEL = "no_channel", _("No channel with consent and contact")
        NO_PROVIDER = "no_provider", _("No provider configured")

    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="notifications", verbose_name=_("order")
    )
    customer = models.ForeignKey(
        "orders.Customer", on_delete=models.CASCADE, related_name="notifications", verbose_name=_("customer")
    )
    event = models.CharField(_("event"), max_length=50)
    purpose = models.CharField(
        _("purpose"), max_length=20, choices=Purpose.choices, default=Purpose.TRANSACTIONAL
    )
    urgent = models.BooleanField(_("urgent"), default=False)
    # The routing decided when the notification was made: channels in the order they are tried.
    channels = models.JSONField(_("channels"), default=list)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    # Why a channel the customer could be reached on was left out, e.g. "no provider configured for sms".
    routing_note = models.CharField(_("routing note"), max_length=200, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return gettext("%(event)s for order %(order)s") % {"event": self.event, "order": self.order_id}


class Message(models.Model):
    """An outbox row: one notification on one channel. Written in the status change's transaction."""

    class Status(models.TextChoices):
        QUEUED = "queued", pgettext_lazy("message status", "Queued")
        SENDING = "sending", pgettext_lazy("message status", "Sending")
        SENT = "sent", pgettext_lazy("message status", "Sent (accepted by the provider)")
        DELIVERED = "delivered", pgettext_lazy("message status", "Delivered")
        READ = "read", pgettext_lazy("message status", "Read")
        FAILED = "failed", pgettext_lazy("message status", "Failed")
        UNDELIVERABLE = "undeliverable", pgettext_lazy("message status", "Undeliverable")
        UNKNOWN = "unknown", pgettext_lazy("message status", "Unknown (request may have gone out)")

    notification = models.ForeignKey(
        Notification,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("notification"),
    )
    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="messages", verbose_name=_("order")
    )
    customer = models.ForeignKey(
        "orders.Customer", on_delete=models.CASCADE, related_name="messages", verbose_name=_("customer")
    )
    event = models.CharField(
        _("event"), max_length=50, help_text=_("The order event this message tells about")
    )
    channel = models.CharField(_("channel"), max_length=20)
    provider = models.CharField(_("provider"), max_length=30)
    template = models.ForeignKey(
        MessageTemplate, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("template")
    )
    recipient = models.CharField(_("recipient"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("body"), blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    # One message per (order status change, channel): a replayed trigger cannot send twice.
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    provider_message_id = models.CharField(
        _("provider message id"), max_length=128, blank=True, db_index=True
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True, db_index=True)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    error_code = models.CharField(_("error code"), max_length=40, blank=True)
    error = models.TextField(_("error text"), blank=True)
    fallback_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fallbacks",
        verbose_name=_("fallback from"),
    )
    fallback_reason = models.CharField(_("fallback reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "id"]
        indexes = [
            # The drain's and the sweep's "due" lookup: only queued rows, oldest due first.
            models.Index(fields=["next_attempt_at"], condition=models.Q(status="queued"), name="message_due")
        ]
        constraints = [
            # Never the same notification twice on one channel.
            models.UniqueConstraint(
                fields=["notification", "channel"],
                condition=models.Q(notification__isnull=False),
                name="message_one_per_notification_channel",
            )
        ]
        permissions = [("resend_message", "Can resend a message")]

    def __str__(self) -> str:
        return gettext("%(event)s via %(channel)s (%(status)s)") % {
            "event": self.event,
            "channel": _channel_words(self.channel),
            "status": self.get_status_display(),
        }


class MessageAttempt(models.Model):
    """One provider call for a message, whatever came of it.

    The row is made when the message is claimed; ``started_at`` is written just before the request
    can go out. After a worker dies, an attempt not started is a call never made (the sweep queues
    the message again and drops the row); one started but unanswered may have reached the provider.
    """

    class Outcome(models.TextChoices):
        PENDING = "pending", _("Request under way")
        ACCEPTED = "accepted", _("Accepted")
        RETRYABLE = "retryable", _("Retryable error")
        PERMANENT = "permanent", _("Permanent error")
        OPTED_OUT = "opted_out", _("Recipient opted out")
        INVALID_RECIPIENT = "invalid_recipient", _("Invalid recipient")
        WINDOW_CLOSED = "window_closed", _("WhatsApp window closed")
        UNKNOWN = "unknown", _("No answer after the request went out")

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="attempt_rows", verbose_name=_("message")
    )
    number = models.PositiveIntegerField(_("number"))
    provider = models.CharField(_("provider"), max_length=30)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices, default=Outcome.PENDING)
    provider_message_id = models.CharField(_("provider message id"), max_length=128, blank=True)
    error_code = models.CharField(_("error code"), max_length=40, blank=True)
    error = models.TextField(_("error"), blank=True)
    retry_after_seconds = models.PositiveIntegerField(_("retry after seconds"), null=True, blank=True)
    # Empty while the message is claimed and its call has not started.
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("message attempt")
        verbose_name_plural = _("message attempts")
        ordering = ["message", "number"]
        constraints = [models.UniqueConstraint(fields=["message", "number"], name="attempt_number_unique")]

    def __str__(self) -> str:
        return gettext("attempt %(number)s: %(outcome)s") % {
            "number": self.number,
            "outcome": self.get_outcome_display(),
        }


def _channel_words(channel: str) -> str:
    return str(Channel(channel).label) if channel in Channel.values else channel


def _message_status_words(status: str) -> str:
    return str(Message.Status(status).label) if status in Message.Status.values else status


class MessageStatusChange(models.Model):
    """The status history of a message (receipts and local decisions), for the ops view."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="status_changes", verbose_name=_("message")
    )
    from_status = models.CharField(_("from status"), max_length=20, blank=True)
    to_status = models.CharField(_("to status"), max_length=20)
    source = models.CharField(_("source"), max_length=30, help_text=_("send task, receipt, sweep, agent"))
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("message status change")
        verbose_name_plural = _("message status changes")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status_words or '-'} → {self.to_status_words}"

    # The statuses as the message's status choices say them, in the reader's language.
    @property
    def from_status_words(self) -> str:
        return _message_status_words(self.from_status)

    @property
    def to_status_words(self) -> str:
        return _message_status_words(self.to_status)


# --- What providers send us ------------------------------------------------------------------
class ProviderWebhook(models.Model):
    """Every accepted provider webhook, stored raw before anything is done with it."""

    class Kind(models.TextChoices):
        STATUS = "status", _("Delivery receipt")
        INBOUND = "inbound", _("Inbound message")

    provider = models.CharField(_("provider"), max_length=30)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    # The store the webhook's URL named (admin shows members their stores' webhooks only).
    store = models.ForeignKey(
        "orders.Store",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="provider_webhooks",
        verbose_name=_("store"),
    )
    dedup_key = models.CharField(_("dedup key"), max_length=300)
    headers = models.JSONField(_("headers"), default=dict)
    body = models.TextField(_("body"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    flagged = models.BooleanField(
        _("flagged"), default=False, help_text=_("Unknown message id or unreadable payload")
    )
    flag_reason = models.CharField(_("flag reason"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("provider webhook")
        verbose_name_plural = _("provider webhooks")
        constraints = [
            models.UniqueConstraint(fields=["provider", "dedup_key"], name="provider_webhook_dedup")
        ]
        permissions = [
            (
                "view_pii",
                "Can see account ids, phone numbers, e-mail addresses and message text in provider webhooks",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.get_kind_display()} #{self.pk}"


class InboundMessage(models.Model):
    """A customer's reply. Confirmations are applied and late ones answered (``outcome`` says what
    was done); anything that needs a person waits here, unhandled, for an agent."""

    class Intent(models.TextChoices):
        CONFIRM = "confirm", pgettext_lazy("reply intent", "Confirm")
        CANCEL = "cancel", pgettext_lazy("reply intent", "Cancel")
        OPT_OUT = "opt_out", pgettext_lazy("reply intent", "Opt out")
        OPT_IN = "opt_in", pgettext_lazy("reply intent", "Opt in")
        OTHER = "other", pgettext_lazy("reply intent", "Needs an agent")

    customer = models.ForeignKey(
        "orders.Customer",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_messages",
        verbose_name=_("customer"),
    )
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_messages",
        verbose_name=_("order"),
    )
    webhook = models.ForeignKey(
        ProviderWebhook, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("webhook")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    provider = models.CharField(_("provider"), max_length=30)
    sender = models.CharField(_("sender"), max_length=254)
    provider_message_id = models.CharField(_("provider message id"), max_length=128, blank=True)
    # The message the customer answered (a button's message), when the provider says.
    in_reply_to = models.ForeignKey(
        Message,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("in reply to"),
    )
    text = models.TextField(_("text"), blank=True)
    button_payload = models.CharField(_("button payload"), max_length=256, blank=True)
    intent = models.CharField(_("intent"), max_length=10, choices=Intent.choices)
    handled = models.BooleanField(_("handled"), default=False)
    outcome = models.CharField(
        _("outcome"), max_length=500, blank=True, help_text=_("What Livra did with the reply")
    )
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("handled by"),
    )
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        verbose_name = _("inbound message")
        verbose_name_plural = _("inbound messages")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_message_id"],
                condition=~models.Q(provider_message_id=""),
                name="inbound_message_dedup",
            )
        ]

    def __str__(self) -> str:
        return gettext("%(channel)s reply (%(intent)s)") % {
            "channel": self.get_channel_display(),
            "intent": self.get_intent_display(),
        }
