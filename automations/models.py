"""Store rules, the timers that wait for an order to stay in a status, and the confirmation queue."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from orders.transitions import OrderStatus


class Trigger(models.TextChoices):
    ENTERED_STATUS = "entered_status", "The order entered a status"
    IN_STATUS_FOR = "in_status_for", "The order stayed in a status for a while"
    REPLY_INTENT = "reply_intent", "The customer replied with an intent"
    LATE_REPLY = "late_reply", "The customer replied when the order no longer awaited an answer"
    ALL_CHANNELS_FAILED = "all_channels_failed", "Every channel failed for a message"
    SHIPMENT_STALE = "shipment_stale", "No carrier news for a while"


class Rule(models.Model):
    """What a store does automatically: when ``trigger`` happens and ``conditions`` hold, the actions.

    ``conditions``: a tree of ``{"all": [...]}`` / ``{"any": [...]}`` over leaves
    ``{"field": ..., "op": ..., "value": ...}`` (automations.services.conditions).
    ``actions``: a list of ``{"type": ..., ...}`` (automations.services.actions).
    Every save that changes what the rule does bumps ``version`` and keeps a ``RuleRevision``.
    """

    store = models.ForeignKey("orders.Store", on_delete=models.CASCADE, related_name="rules")
    key = models.SlugField(
        max_length=60, blank=True, help_text="Set on the rules Livra creates, so they are created once"
    )
    name = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=100, help_text="Rules run in this order, lowest first")
    enabled = models.BooleanField(default=True)
    trigger = models.CharField(max_length=30, choices=Trigger.choices)
    status = models.CharField(
        max_length=30, choices=OrderStatus.choices, blank=True, help_text="For the status triggers"
    )
    delay_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="For 'stayed in a status' and 'no carrier news': how long"
    )
    intent = models.CharField(
        max_length=20, blank=True, help_text="For the reply triggers: confirm, cancel or unclear"
    )
    conditions = models.JSONField(default=dict, blank=True)
    actions = models.JSONField(default=list)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["store", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "key"], condition=~models.Q(key=""), name="rule_unique_key_per_store"
            )
        ]
        permissions = [("dry_run_rule", "Can dry-run a rule")]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"


class RuleRevision(models.Model):
    """What a rule said at one version, and who changed it."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    snapshot = models.JSONField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rule", "-version"]
        constraints = [models.UniqueConstraint(fields=["rule", "version"], name="rule_revision_unique")]

    def __str__(self) -> str:
        return f"{self.rule_id} v{self.version}"


class Timer(models.Model):
    """An order waiting in a status for a rule: due at ``due_at``, dead as soon as it leaves.

    ``status_version`` is the order's when it entered the status: the order is still there exactly
    when its status_version is unchanged, so a timer for an order that moved on fires nothing.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        FIRING = "firing", "Being fired by a sweep"
        FIRED = "fired", "Fired"
        DEAD = "dead", "Dead (the order moved on)"
        FAILED = "failed", "Failed"

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="timers")
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="timers")
    status = models.CharField(max_length=30, choices=OrderStatus.choices)
    status_version = models.PositiveIntegerField()
    due_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    fired_at = models.DateTimeField(null=True, blank=True, help_text="When a sweep took it")
    outcome = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            # The sweep's lookup: pending timers by due time, nothing else in the index.
            models.Index(fields=["due_at"], condition=models.Q(state="pending"), name="timer_pending_due"),
            # Timers a crashed sweep claimed and never finished (reclaimed after a lease).
            models.Index(fields=["fired_at"], condition=models.Q(state="firing"), name="timer_firing_since"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "rule", "status_version"], name="timer_once_per_rule_and_status_entry"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule} for order {self.order_id} due {self.due_at:%Y-%m-%d %H:%M}"


class SweepRun(models.Model):
    """One run of the timer sweep: what it fired, skipped and failed."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    fired = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="Due timers whose order had moved on")
    errors = models.PositiveIntegerField(default=0)
    error_text = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"sweep {self.started_at:%Y-%m-%d %H:%M:%S}: {self.fired} fired"


class QueueEntry(models.Model):
    """An order a confirmation agent should call: why, how urgent, and whether it is done.

    An agent marks it done, or it closes by itself once the order has settled what it was queued
    for (``automations.services.queue``); ``closed_by`` and ``close_reason`` say who or what did.
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="queue_entries")
    priority = models.PositiveSmallIntegerField(default=50, help_text="Higher first")
    reason = models.CharField(max_length=300)
    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    close_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = "confirmation queue entry"
        verbose_name_plural = "confirmation queue"
        ordering = ["-priority", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"], condition=models.Q(state="open"), name="queue_one_open_entry_per_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.order} ({self.reason})"


class TeamAlert(models.Model):
    """A rule's alert for the team channel: an outbox row, written with the rule's other actions
    and posted after commit (several alerts with the same text go out as one post)."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        NOT_CONFIGURED = "not_configured", "No team channel configured"

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="team_alerts")
    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    text = models.CharField(max_length=500)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state="queued"),
                name="team_alert_due",
            ),
            models.Index(
                fields=["claimed_at"],
                condition=models.Q(state="sending"),
                name="team_alert_sending_since",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.text} ({self.order})"
