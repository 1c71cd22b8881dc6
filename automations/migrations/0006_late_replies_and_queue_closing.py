"""Late replies get answers, the reminder its own text, and queue entries close by themselves.

- The "late reply" trigger, and the default rules that answer replies (added to existing stores);
  a store's reminder rule that still sends the first request word for word now sends the reminder
  (a copy the store edited is left alone).
- Queue entries say who or what closed them; the open ones whose order already settled them (it
  left awaiting confirmation, or ended) are closed now, as they would have been.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

AWAITING = "awaiting_confirmation"
FINAL_STATUSES = ("delivered", "cancelled", "returned", "refunded")
# Entries queued while the order awaited confirmation: by a rule waiting in (or entering) that
# status, or by a reply rule (until now they only ran for orders awaiting an answer).
QUEUED_WHILE_AWAITING = models.Q(
    rule__trigger__in=("in_status_for", "entered_status"), rule__status=AWAITING
) | models.Q(rule__trigger="reply_intent")


def add_and_update_default_rules(apps, schema_editor):
    from automations.services.defaults import default_rules_create, default_rules_update

    Rule, RuleRevision = apps.get_model("automations", "Rule"), apps.get_model("automations", "RuleRevision")
    for store in apps.get_model("orders", "Store").objects.all():
        default_rules_create(store, rule_model=Rule, revision_model=RuleRevision)
        default_rules_update(store, rule_model=Rule, revision_model=RuleRevision)


def close_settled_queue_entries(apps, schema_editor):
    QueueEntry, OrderEvent = (
        apps.get_model("automations", "QueueEntry"),
        apps.get_model("orders", "OrderEvent"),
    )
    settled = QueueEntry.objects.filter(state="open").filter(
        models.Q(order__status__in=FINAL_STATUSES)
        | (QUEUED_WHILE_AWAITING & ~models.Q(order__status=AWAITING))
    )
    now, events = timezone.now(), []
    for entry in settled.select_related("order"):
        entry.state, entry.closed_at = "done", now
        entry.close_reason = (
            f"order already {entry.order.status} when queue entries began to close by themselves"
        )
        entry.save(update_fields=["state", "closed_at", "close_reason"])
        events.append(
            OrderEvent(
                order_id=entry.order_id,
                type="queue_entry_closed",
                source="system",
                reason=entry.close_reason,
                payload={
                    "queue_entry_id": entry.pk,
                    "priority": entry.priority,
                    "queue_reason": entry.reason,
                },
            )
        )
    OrderEvent.objects.bulk_create(events)


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0005_team_alerts"),
        ("messaging", "0008_reply_answers_and_reminder"),
        ("orders", "0008_store_payment_link_url"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="queueentry",
            name="close_reason",
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AddField(
            model_name="queueentry",
            name="closed_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="rule",
            name="intent",
            field=models.CharField(
                blank=True, help_text="For the reply triggers: confirm, cancel or unclear", max_length=20
            ),
        ),
        migrations.AlterField(
            model_name="rule",
            name="trigger",
            field=models.CharField(
                choices=[
                    ("entered_status", "The order entered a status"),
                    ("in_status_for", "The order stayed in a status for a while"),
                    ("reply_intent", "The customer replied with an intent"),
                    ("late_reply", "The customer replied when the order no longer awaited an answer"),
                    ("all_channels_failed", "Every channel failed for a message"),
                    ("shipment_stale", "No carrier news for a while"),
                ],
                max_length=30,
            ),
        ),
        migrations.RunPython(add_and_update_default_rules, migrations.RunPython.noop),
        migrations.RunPython(close_settled_queue_entries, migrations.RunPython.noop),
    ]
