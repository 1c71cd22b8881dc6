# The outbox drain's "due" lookup: queued messages by next attempt (partial index).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0004_outbox_sweep_schedule_and_permissions"),
        ("orders", "0003_customer_preferred_channel"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("status", "queued")), fields=["next_attempt_at"], name="message_due"
            ),
        ),
    ]
