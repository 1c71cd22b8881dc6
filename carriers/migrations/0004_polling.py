"""Polling: each account's request budget and pause, each shipment's next poll; the poll sweep
registered with celery-beat (every minute; an existing schedule of that name is left as ops set
it); parcels already at a carrier and not settled are due for a poll now."""

from django.db import migrations, models
from django.utils import timezone

POLL_TASK_NAME = "carriers: poll shipments"
SETTLED = ["delivered", "returned", "cancelled", "lost"]


def register_poll_sweep(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if not PeriodicTask.objects.filter(name=POLL_TASK_NAME).exists():
        every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
        PeriodicTask.objects.create(
            name=POLL_TASK_NAME, task="carriers.shipments_poll", interval=every_minute
        )
    Shipment = apps.get_model("carriers", "Shipment")
    Shipment.objects.filter(account__isnull=False).exclude(tracking_number="").exclude(
        state__in=SETTLED
    ).exclude(create_status="cancelled").update(next_poll_at=timezone.now())


class Migration(migrations.Migration):
    dependencies = [
        ("carriers", "0003_carrier_accounts_tracking"),
        ("orders", "0012_translatable_labels"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="carrieraccount",
            name="poll_error",
            field=models.CharField(blank=True, max_length=300, verbose_name="last poll error"),
        ),
        migrations.AddField(
            model_name="carrieraccount",
            name="poll_failures",
            field=models.PositiveIntegerField(default=0, verbose_name="poll failures in a row"),
        ),
        migrations.AddField(
            model_name="carrieraccount",
            name="poll_paused_until",
            field=models.DateTimeField(
                blank=True,
                help_text="Set after the carrier refused or failed a poll; empty: polling runs",
                null=True,
                verbose_name="polling paused until",
            ),
        ),
        migrations.AddField(
            model_name="carrieraccount",
            name="poll_refilled_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="poll budget refilled at"),
        ),
        migrations.AddField(
            model_name="carrieraccount",
            name="poll_tokens",
            field=models.FloatField(
                blank=True, editable=False, null=True, verbose_name="poll requests available"
            ),
        ),
        migrations.AddField(
            model_name="shipment",
            name="next_poll_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="next poll at"),
        ),
        migrations.AddField(
            model_name="shipment",
            name="poll_retired_at",
            field=models.DateTimeField(
                blank=True,
                help_text="No carrier news for too long: no longer polled",
                null=True,
                verbose_name="polling retired at",
            ),
        ),
        migrations.AddIndex(
            model_name="shipment",
            index=models.Index(
                condition=models.Q(("next_poll_at__isnull", False)),
                fields=["account", "next_poll_at"],
                name="shipment_poll_due",
            ),
        ),
        migrations.RunPython(register_poll_sweep, migrations.RunPython.noop),
    ]
