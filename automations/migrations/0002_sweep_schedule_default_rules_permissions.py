"""Register the timer sweep with celery-beat (every minute; an existing schedule of that name is
left as ops set it), give existing stores the default rules they lack, and the groups their
automation permissions. Idempotent."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

SWEEP_TASK_NAME = "automations: timer sweep"
GROUP_PERMISSIONS = {
    "Confirmation agent": ["view_queueentry", "change_queueentry"],
    "Ops agent": ["view_queueentry", "change_queueentry", "view_rule", "view_timer", "view_sweeprun"],
    "Store admin": [
        "view_queueentry",
        "change_queueentry",
        "view_rule",
        "add_rule",
        "change_rule",
        "dry_run_rule",
        "view_rulerevision",
        "view_timer",
        "view_sweeprun",
    ],
}


def register_timer_sweep(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=SWEEP_TASK_NAME).exists():
        return
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.create(name=SWEEP_TASK_NAME, task="automations.timers_sweep", interval=every_minute)


def create_default_rules(apps, schema_editor):
    from automations.services.defaults import default_rules_create

    Rule, RuleRevision = apps.get_model("automations", "Rule"), apps.get_model("automations", "RuleRevision")
    for store in apps.get_model("orders", "Store").objects.all():
        default_rules_create(store, rule_model=Rule, revision_model=RuleRevision)


def grant_automation_permissions(apps, schema_editor):
    create_permissions(global_apps.get_app_config("automations"), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="automations", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0001_rules_timers_queue"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("orders", "0007_wakeup"),
    ]

    operations = [
        migrations.RunPython(register_timer_sweep, migrations.RunPython.noop),
        migrations.RunPython(create_default_rules, migrations.RunPython.noop),
        migrations.RunPython(grant_automation_permissions, migrations.RunPython.noop),
    ]
