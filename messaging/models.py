"""Messaging data: consent, per-store channel settings, templates, the outbox and what came back."""

import datetime

from django.conf import settings
from django.db import models


class Channel(models.TextChoices):
    WHATSAPP = "whatsapp", "WhatsApp"
    SMS = "sms", "SMS"
    EMAIL = "email", "E-mail"


class Purpose(models.TextChoices):
    TRANSACTIONAL = "transactional", "Transactional (about an order)"
    MARKETING = "marketing", "Marketing"


# --- Consent ---------------------------------------------------------------------------------
class Consent(models.Model):
    """Where a customer stands on one channel now. Its history is in ConsentEvent."""

    class Status(models.TextChoices):
        OPTED_IN = "opted_in", "Opted in"
        OPTED_OUT = "opted_out", "Opted out"

    class Source(models.TextChoices):
        CHECKOUT = "checkout", "Checkout"
        STORE_WEBHOOK = "store_webhook", "Store webhook field"
        CUSTOMER_REPLY = "customer_reply", "Customer reply"
        PROVIDER = "provider", "Provider opt-out error"
        AGENT = "agent", "Agent"
        API = "api", "API"

    customer = models.ForeignKey("orders.Customer", on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    status = models.CharField(max_length=20, choices=Status.choices)
    # Marketing needs its own explicit yes; an opt-out stops both kinds.
    marketing = models.BooleanField(default=False)
    source = models.CharField(max_length=20, choices=Source.choices)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel"], name="consent_one_per_channel")
        ]

    def __str__(self) -> str:
        return f"{self.channel}: {self.get_status_display()}"


class ConsentEvent(models.Model):
    """Append-only evidence: every consent change, with who or what caused it."""

    customer = models.ForeignKey("orders.Customer", on_delete=models.CASCADE, related_name="consent_events")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    status = models.CharField(max_length=20, choices=Consent.Status.choices)
    marketing = models.BooleanField(default=False)
    source = models.CharField(max_length=20, choices=Consent.Source.choices)
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
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
        IMPLIED = "implied", "Contact given at checkout is enough, until the customer opts out"
        EXPLICIT = "explicit", "Only channels the customer explicitly opted into"

    store = models.OneToOneField("orders.Store", on_delete=models.CASCADE, related_name="messaging_settings")
    channel_order = models.JSONField(
        default=default_channel_order, help_text='e.g. ["whatsapp", "sms", "email"]'
    )
    transactional_policy = models.CharField(
        max_length=10, choices=TransactionalPolicy.choices, default=TransactionalPolicy.IMPLIED
    )
    quiet_hours_start = models.TimeField(null=True, blank=True, default=datetime.time(21, 0))
    quiet_hours_end = models.TimeField(null=True, blank=True, default=datetime.time(9, 0))
    receipt_timeouts = models.JSONField(default=default_receipt_timeouts, help_text="seconds per channel")

    class Meta:
        verbose_name_plural = "messaging settings"

    def __str__(self) -> str:
        return f"Messaging settings of {self.store}"


class ChannelProvider(models.Model):
    """Which provider sends a store's messages on a channel. Credentials stay in the environment."""

    store = models.ForeignKey("orders.Store", on_delete=models.CASCADE, related_name="channel_providers")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    provider = models.CharField(max_length=30, help_text="registered provider name, e.g. twilio_sms")
    sender = models.CharField(
        max_length=100, blank=True, help_text="From number, WhatsApp phone number id or sender e-mail"
    )
    credentials_env_prefix = models.CharField(
        max_length=60,
        blank=True,
        help_text="Credentials are read from environment variables starting with this, e.g. LIVRA_TWILIO",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "channel"], name="one_provider_per_store_channel")
        ]

    def __str__(self) -> str:
        return f"{self.store} {self.channel} via {self.provider}"


# --- Templates -------------------------------------------------------------------------------
class MessageTemplate(models.Model):
    store = models.ForeignKey(
        "orders.Store",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text="Empty: every store's default",
    )
    event = models.CharField(max_length=50)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    language = models.CharField(max_length=2)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.TRANSACTIONAL)
    subject = models.CharField(max_length=200, blank=True, help_text="E-mail subject; placeholders allowed")
    body = models.TextField(help_text="Text with {placeholders}, e.g. {customer_name}")
    # WhatsApp (Meta Cloud API): the approved template and its ordered body parameters.
    whatsapp_template_name = models.CharField(max_length=100, blank=True)
    whatsapp_language_code = models.CharField(max_length=10, blank=True)
    body_parameters = models.JSONField(
        default=list, blank=True, help_text='ordered placeholders, e.g. ["order_number"]'
    )
    buttons = models.JSONField(
        default=list, blank=True, help_text='quick replies: [{"id": "confirm", "title": "…"}]'
    )
    # Twilio WhatsApp templates (Content API) and SendGrid dynamic templates.
    twilio_content_sid = models.CharField(max_length=40, blank=True)
    sendgrid_template_id = models.CharField(max_length=60, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
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
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        EXHAUSTED = "exhausted", "Every channel failed"
        NO_CHANNEL = "no_channel", "No channel with consent and contact"
        NO_PROVIDER = "no_provider", "No provider configured"

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="notifications")
    customer = models.ForeignKey("orders.Customer", on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=50)
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.TRANSACTIONAL)
    urgent = models.BooleanField(default=False)
    # The routing decided when the notification was made: channels in the order they are tried.
    channels = models.JSONField(default=list)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    # Why a channel the customer could be reached on was left out, e.g. "no provider configured for sms".
    routing_note = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.event} for order {self.order_id}"


class Message(models.Model):
    """An outbox row: one notification on one channel. Written in the status change's transaction."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent (accepted by the provider)"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"
        UNDELIVERABLE = "undeliverable", "Undeliverable"
        UNKNOWN = "unknown", "Unknown (request may have gone out)"

    notification = models.ForeignKey(
        Notification, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="messages")
    customer = models.ForeignKey("orders.Customer", on_delete=models.CASCADE, related_name="messages")
    event = models.CharField(max_length=50, help_text="The order event this message tells about")
    channel = models.CharField(max_length=20)
    provider = models.CharField(max_length=30)
    template = models.ForeignKey(MessageTemplate, null=True, blank=True, on_delete=models.SET_NULL)
    recipient = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # One message per (order status change, channel): a replayed trigger cannot send twice.
    idempotency_key = models.CharField(max_length=200, unique=True)
    provider_message_id = models.CharField(max_length=128, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error = models.TextField("error text", blank=True)
    fallback_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="fallbacks"
    )
    fallback_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
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
        return f"{self.event} via {self.channel} ({self.status})"


class MessageAttempt(models.Model):
    """One provider call for a message, whatever came of it.

    The row is made when the message is claimed; ``started_at`` is written just before the request
    can go out. After a worker dies, an attempt not started is a call never made (the sweep queues
    the message again and drops the row); one started but unanswered may have reached the provider.
    """

    class Outcome(models.TextChoices):
        PENDING = "pending", "Request under way"
        ACCEPTED = "accepted", "Accepted"
        RETRYABLE = "retryable", "Retryable error"
        PERMANENT = "permanent", "Permanent error"
        OPTED_OUT = "opted_out", "Recipient opted out"
        INVALID_RECIPIENT = "invalid_recipient", "Invalid recipient"
        WINDOW_CLOSED = "window_closed", "WhatsApp window closed"
        UNKNOWN = "unknown", "No answer after the request went out"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    provider = models.CharField(max_length=30)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.PENDING)
    provider_message_id = models.CharField(max_length=128, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    retry_after_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Empty while the message is claimed and its call has not started.
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["message", "number"]
        constraints = [models.UniqueConstraint(fields=["message", "number"], name="attempt_number_unique")]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.outcome}"


class MessageStatusChange(models.Model):
    """The status history of a message (receipts and local decisions), for the ops view."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    source = models.CharField(max_length=30, help_text="send task, receipt, sweep, agent")
    detail = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} → {self.to_status}"


# --- What providers send us ------------------------------------------------------------------
class ProviderWebhook(models.Model):
    """Every accepted provider webhook, stored raw before anything is done with it."""

    class Kind(models.TextChoices):
        STATUS = "status", "Delivery receipt"
        INBOUND = "inbound", "Inbound message"

    provider = models.CharField(max_length=30)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The store the webhook's URL named (admin shows members their stores' webhooks only).
    store = models.ForeignKey(
        "orders.Store", null=True, blank=True, on_delete=models.SET_NULL, related_name="provider_webhooks"
    )
    dedup_key = models.CharField(max_length=300)
    headers = models.JSONField(default=dict)
    body = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    flagged = models.BooleanField(default=False, help_text="Unknown message id or unreadable payload")
    flag_reason = models.CharField(max_length=300, blank=True)

    class Meta:
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
        return f"{self.provider} {self.kind} #{self.pk}"


class InboundMessage(models.Model):
    """A customer's reply. Confirmations are applied and late ones answered (``outcome`` says what
    was done); anything that needs a person waits here, unhandled, for an agent."""

    class Intent(models.TextChoices):
        CONFIRM = "confirm", "Confirm"
        CANCEL = "cancel", "Cancel"
        OPT_OUT = "opt_out", "Opt out"
        OPT_IN = "opt_in", "Opt in"
        OTHER = "other", "Needs an agent"

    customer = models.ForeignKey(
        "orders.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_messages"
    )
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_messages"
    )
    webhook = models.ForeignKey(ProviderWebhook, null=True, blank=True, on_delete=models.SET_NULL)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    provider = models.CharField(max_length=30)
    sender = models.CharField(max_length=254)
    provider_message_id = models.CharField(max_length=128, blank=True)
    # The message the customer answered (a button's message), when the provider says.
    in_reply_to = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)
    button_payload = models.CharField(max_length=256, blank=True)
    intent = models.CharField(max_length=10, choices=Intent.choices)
    handled = models.BooleanField(default=False)
    outcome = models.CharField(max_length=500, blank=True, help_text="What Livra did with the reply")
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_message_id"],
                condition=~models.Q(provider_message_id=""),
                name="inbound_message_dedup",
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} reply ({self.intent})"
