"""Register the store inbox sweep with celery-beat (every minute). Idempotent, and an existing
schedule of that name is left as ops set it."""

from django.db import migrations

SWEEP_TASK_NAME = "orders: store inbox sweep"


def register_store_inbox_sweep(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=SWEEP_TASK_NAME).exists():
        return
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.create(
        name=SWEEP_TASK_NAME, task="orders.store_delivery_sweep", interval=every_minute
    )


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_store_delivery_permissions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(register_store_inbox_sweep, migrations.RunPython.noop)]
