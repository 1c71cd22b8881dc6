"""Store rules, the timers that wait for an order to stay in a status, and the confirmation queue."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from orders.stored_words import stored_words
from orders.transitions import OrderStatus


class Trigger(models.TextChoices):
    ENTERED_STATUS = "entered_status", _("The order entered a status")
    IN_STATUS_FOR = "in_status_for", _("The order stayed in a status for a while")
    REPLY_INTENT = "reply_intent", _("The customer replied with an intent")
    LATE_REPLY = "late_reply", _("The customer replied when the order no longer awaited an answer")
    ALL_CHANNELS_FAILED = "all_channels_failed", _("Every channel failed for a message")
    SHIPMENT_STALE = "shipment_stale", _("No carrier news for a while")


class Rule(models.Model):
    """What a store does automatically: when ``trigger`` happens and ``conditions`` hold, the actions.

    ``conditions``: a tree of ``{"all": [...]}`` / ``{"any": [...]}`` over leaves
    ``{"field": ..., "op": ..., "value": ...}`` (automations.services.conditions).
    ``actions``: a list of ``{"type": ..., ...}`` (automations.services.actions).
    Every save that changes what the rule does bumps ``version`` and keeps a ``RuleRevision``.
    """

    store = models.ForeignKey(
        "orders.Store", on_delete=models.CASCADE, related_name="rules", verbose_name=_("store")
    )
    key = models.SlugField(
        _("key"),
        max_length=60,
        blank=True,
        help_text=_("Set on the rules Livra creates, so they are created once"),
    )
    name = models.CharField(_("name"), max_length=200)
    position = models.PositiveIntegerField(
        _("position"), default=100, help_text=_("Rules run in this order, lowest first")
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    trigger = models.CharField(_("trigger"), max_length=30, choices=Trigger.choices)
    status = models.CharField(
        _("status"),
        max_length=30,
        choices=OrderStatus.choices,
        blank=True,
        help_text=_("For the status triggers"),
    )
    delay_minutes = models.PositiveIntegerField(
        _("delay minutes"),
        null=True,
        blank=True,
        help_text=_("For 'stayed in a status' and 'no carrier news': how long"),
    )
    intent = models.CharField(
        _("intent"),
        max_length=20,
        blank=True,
        help_text=_("For the reply triggers: confirm, cancel or unclear"),
    )
    conditions = models.JSONField(_("conditions"), default=dict, blank=True)
    actions = models.JSONField(_("actions"), default=list)
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("rule")
        verbose_name_plural = _("rules")
        ordering = ["store", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "key"], condition=~models.Q(key=""), name="rule_unique_key_per_store"
            )
        ]
        permissions = [("dry_run_rule", "Can dry-run a rule")]

    def __str__(self) -> str:
        return f"{self.name_shown} (v{self.version})"

    @property
    def name_shown(self) -> str:
        """The name in the reader's language when it is a default rule's (orders.stored_words)."""
        return stored_words(self.name)


class RuleRevision(models.Model):
    """What a rule said at one version, and who changed it."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="revisions", verbose_name=_("rule"))
    version = models.PositiveIntegerField(_("version"))
    snapshot = models.JSONField(_("snapshot"))
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("changed by"),
    )
    changed_at = models.DateTimeField(_("changed at"), auto_now_add=True)

    class Meta:
        verbose_name = _("rule revision")
        verbose_name_plural = _("rule revisions")
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
        PENDING = "pending", pgettext_lazy("timer state", "Pending")
        FIRING = "firing", pgettext_lazy("timer state", "Being fired by a sweep")
        FIRED = "fired", pgettext_lazy("timer state", "Fired")
        DEAD = "dead", pgettext_lazy("timer state", "Dead (the order moved on)")
        FAILED = "failed", pgettext_lazy("timer state", "Failed")

    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="timers", verbose_name=_("order")
    )
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="timers", verbose_name=_("rule"))
    status = models.CharField(_("status"), max_length=30, choices=OrderStatus.choices)
    status_version = models.PositiveIntegerField(_("status version"))
    due_at = models.DateTimeField(_("due at"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    fired_at = models.DateTimeField(_("fired at"), null=True, blank=True, help_text=_("When a sweep took it"))
    outcome = models.TextField(_("outcome"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("timer")
        verbose_name_plural = _("timers")
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
        return gettext("%(rule)s for order %(order)s due %(due)s") % {
            "rule": self.rule,
            "order": self.order_id,
            "due": f"{self.due_at:%Y-%m-%d %H:%M}",
        }


class SweepRun(models.Model):
    """One run of the timer sweep: what it fired, skipped and failed."""

    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    fired = models.PositiveIntegerField(pgettext_lazy("sweep run", "fired"), default=0)
    skipped = models.PositiveIntegerField(
        pgettext_lazy("sweep run", "skipped"),
        default=0,
        help_text=_("Due timers whose order had moved on"),
    )
    errors = models.PositiveIntegerField(pgettext_lazy("sweep run", "errors"), default=0)
    error_text = models.TextField(_("error text"), blank=True)

    class Meta:
        verbose_name = _("sweep run")
        verbose_name_plural = _("sweep runs")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return gettext("sweep %(started)s: %(fired)s fired") % {
            "started": f"{self.started_at:%Y-%m-%d %H:%M:%S}",
            "fired": self.fired,
        }


class QueueEntry(models.Model):
    """An order a confirmation agent should call: why, how urgent, and whether it is done.

    An agent marks it done, or it closes by itself once the order has settled what it was queued
    for (``automations.services.queue``); ``closed_by`` and ``close_reason`` say who or what did.
    """

    class State(models.TextChoices):
        OPEN = "open", pgettext_lazy("queue entry state", "Open")
        DONE = "done", pgettext_lazy("queue entry state", "Done")

    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="queue_entries", verbose_name=_("order")
    )
    priority = models.PositiveSmallIntegerField(_("priority"), default=50, help_text=_("Higher first"))
    reason = models.CharField(_("reason"), max_length=300)
    rule = models.ForeignKey(
        Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("rule")
    )
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("closed by"),
    )
    close_reason = models.CharField(_("close reason"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("confirmation queue entry")
        verbose_name_plural = _("confirmation queue")
        ordering = ["-priority", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"], condition=models.Q(state="open"), name="queue_one_open_entry_per_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.order} ({self.reason_shown})"

    @property
    def reason_shown(self) -> str:
        return stored_words(self.reason)


class TeamAlert(models.Model):
    """A rule's alert for the team channel: an outbox row, written with the rule's other actions
    and posted after commit (several alerts with the same text go out as one post)."""

    class State(models.TextChoices):
        QUEUED = "queued", pgettext_lazy("team alert state", "Queued")
        SENDING = "sending", pgettext_lazy("team alert state", "Sending")
        SENT = "sent", pgettext_lazy("team alert state", "Sent")
        FAILED = "failed", pgettext_lazy("team alert state", "Failed")
        NOT_CONFIGURED = "not_configured", pgettext_lazy("team alert state", "No team channel configured")

    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="team_alerts", verbose_name=_("order")
    )
    rule = models.ForeignKey(
        Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("rule")
    )
    text = models.CharField(_("text"), max_length=500)
    state = models.CharField(_("state"), max_length=20, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("team alert")
        verbose_name_plural = _("team alerts")
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
        # The text is what the team channel received, in English (automations.services.team_alerts).
        return gettext("Team alert #%(id)s on %(order)s") % {"id": self.pk, "order": self.order}
