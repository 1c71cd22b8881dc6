"""What Livra did with each customer reply (``outcome``), and the default templates added since 0006:
the reminder's own text and the answers to replies (we got your message; already confirmed;
cancel after confirming; cancelled). Never overwrites a template."""

from django.db import migrations, models

from messaging.default_templates import install_default_templates


def create_missing_default_templates(apps, schema_editor):
    install_default_templates(apps.get_model("messaging", "MessageTemplate"))


class Migration(migrations.Migration):
    dependencies = [("messaging", "0007_provider_webhook_store_pii_no_provider")]

    operations = [
        migrations.AddField(
            model_name="inboundmessage",
            name="outcome",
            field=models.CharField(blank=True, help_text="What Livra did with the reply", max_length=500),
        ),
        migrations.RunPython(create_missing_default_templates, migrations.RunPython.noop),
    ]
