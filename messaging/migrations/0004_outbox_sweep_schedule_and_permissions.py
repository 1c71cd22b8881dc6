"""Register the outbox sweep with celery-beat and give the groups the new messaging permissions.

Idempotent, and it never overwrites or deletes what ops changed: an existing schedule with the
same name is left as it is (its interval may have been tuned in admin).
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

SWEEP_TASK_NAME = "messaging: outbox sweep"

GROUP_PERMISSIONS = {
    "Confirmation agent": [
        "view_notification",
        "view_consent",
        "view_consentevent",
        "view_inboundmessage",
        "change_inboundmessage",
        "add_consent",  # an agent records what the customer said, with the reason
        "view_messagetemplate",
    ],
    "Ops agent": [
        "view_notification",
        "view_consent",
        "view_consentevent",
        "view_inboundmessage",
        "change_inboundmessage",
        "add_consent",  # an agent records what the customer said, with the reason
        "view_messagetemplate",
        "view_messagingsettings",
        "view_channelprovider",
        "view_providerwebhook",
        "resend_message",
    ],
    "Store admin": [
        "view_notification",
        "view_consent",
        "view_consentevent",
        "view_inboundmessage",
        "change_inboundmessage",
        "add_consent",  # an agent records what the customer said, with the reason
        "view_messagetemplate",
        "add_messagetemplate",
        "change_messagetemplate",
        "view_messagingsettings",
        "change_messagingsettings",
        "view_channelprovider",
        "add_channelprovider",
        "change_channelprovider",
        "view_providerwebhook",
        "resend_message",
    ],
}


def register_outbox_sweep(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=SWEEP_TASK_NAME).exists():
        return
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=60, period="seconds")
    PeriodicTask.objects.create(name=SWEEP_TASK_NAME, task="messaging.outbox_sweep", interval=every_minute)


def grant_messaging_permissions(apps, schema_editor):
    create_permissions(global_apps.get_app_config("messaging"), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="messaging", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0003_default_templates"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("orders", "0002_default_groups"),
    ]

    operations = [
        migrations.RunPython(register_outbox_sweep, migrations.RunPython.noop),
        migrations.RunPython(grant_messaging_permissions, migrations.RunPython.noop),
    ]
