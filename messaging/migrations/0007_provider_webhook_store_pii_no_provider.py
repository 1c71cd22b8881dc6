"""Provider webhooks get the store their URL named (admin scopes them by it); the ones already
stored get it from the customer of the reply they carried, where there is one (receipts and
unknown senders' replies stay without: superusers see them). A permission to see the personal
data in them, given to Store admins. Notifications can say no provider was configured.
"""

import django.db.models.deletion
from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations, models
from django.db.models import OuterRef, Subquery

PII_GROUPS = ["Store admin"]


def store_from_replies(apps, schema_editor):
    ProviderWebhook = apps.get_model("messaging", "ProviderWebhook")
    InboundMessage = apps.get_model("messaging", "InboundMessage")
    replies = InboundMessage.objects.filter(webhook=OuterRef("pk"), customer__isnull=False)
    ProviderWebhook.objects.filter(store__isnull=True).update(
        store=Subquery(replies.values("customer__store")[:1])
    )


def grant_view_pii(apps, schema_editor):
    create_permissions(global_apps.get_app_config("messaging"), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view_pii = Permission.objects.filter(content_type__app_label="messaging", codename="view_pii")
    for group_name in PII_GROUPS:
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(*view_pii)


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0006_payment_link_and_review_templates"),
        ("orders", "0008_store_payment_link_url"),
        ("orders", "0002_default_groups"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="providerwebhook",
            options={
                "permissions": [
                    (
                        "view_pii",
                        "Can see account ids, phone numbers, e-mail addresses and message text in provider webhooks",
                    )
                ]
            },
        ),
        migrations.AddField(
            model_name="notification",
            name="routing_note",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="providerwebhook",
            name="store",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="provider_webhooks",
                to="orders.store",
            ),
        ),
        migrations.AlterField(
            model_name="notification",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("delivered", "Delivered"),
                    ("exhausted", "Every channel failed"),
                    ("no_channel", "No channel with consent and contact"),
                    ("no_provider", "No provider configured"),
                ],
                db_index=True,
                default="pending",
                max_length=20,
            ),
        ),
        migrations.RunPython(store_from_replies, migrations.RunPython.noop),
        migrations.RunPython(grant_view_pii, migrations.RunPython.noop),
    ]
