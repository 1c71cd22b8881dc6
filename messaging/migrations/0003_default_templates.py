"""Install the default templates (messaging/default_templates.py); stores edit them in admin."""

from django.db import migrations

from messaging.default_templates import install_default_templates


def create_default_templates(apps, schema_editor):
    install_default_templates(apps.get_model("messaging", "MessageTemplate"))


class Migration(migrations.Migration):
    dependencies = [("messaging", "0002_channels_consent_templates_outbox")]

    operations = [migrations.RunPython(create_default_templates, migrations.RunPython.noop)]
