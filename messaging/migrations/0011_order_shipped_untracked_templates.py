"""Install the default templates of order_shipped_untracked (what a shipped message says while the
carrier or the tracking link is unknown)."""

from django.db import migrations

from messaging.default_templates import install_default_templates


def create_missing_default_templates(apps, schema_editor):
    install_default_templates(apps.get_model("messaging", "MessageTemplate"))


class Migration(migrations.Migration):
    dependencies = [("messaging", "0010_translatable_labels")]

    operations = [migrations.RunPython(create_missing_default_templates, migrations.RunPython.noop)]
