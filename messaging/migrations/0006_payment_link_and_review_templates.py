"""Install the default templates added since 0003 (payment link, review request); never overwrites."""

from django.db import migrations

from messaging.default_templates import install_default_templates


def create_missing_default_templates(apps, schema_editor):
    install_default_templates(apps.get_model("messaging", "MessageTemplate"))


class Migration(migrations.Migration):
    dependencies = [("messaging", "0005_outbox_drain")]

    operations = [migrations.RunPython(create_missing_default_templates, migrations.RunPython.noop)]
