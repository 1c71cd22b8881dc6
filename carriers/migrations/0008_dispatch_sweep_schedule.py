"""Register the dispatch batches' sweep with celery-beat (every minute): batches whose task was lost
are published again. Idempotent, and an existing schedule of that name is left as ops set it."""

from django.db import migrations

SWEEP_TASK_NAME = "carriers: dispatch batches sweep"


def register_dispatch_sweep(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=SWEEP_TASK_NAME).exists():
        return
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.create(
        name=SWEEP_TASK_NAME, task="carriers.dispatch_batches_sweep", interval=every_minute
    )


class Migration(migrations.Migration):
    dependencies = [
        ("carriers", "0007_sandbox_parcels"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(register_dispatch_sweep, migrations.RunPython.noop)]
