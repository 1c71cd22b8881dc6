"""Give existing stores the default rules added since 0002 (the first move of a COD order, the status
messages, the payment link, the review request); a store's existing rules are left as they are."""

from django.db import migrations


def create_missing_default_rules(apps, schema_editor):
    from automations.services.defaults import default_rules_create

    Rule, RuleRevision = apps.get_model("automations", "Rule"), apps.get_model("automations", "RuleRevision")
    for store in apps.get_model("orders", "Store").objects.all():
        default_rules_create(store, rule_model=Rule, revision_model=RuleRevision)


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0003_timer_firing_index"),
        ("messaging", "0006_payment_link_and_review_templates"),
        ("orders", "0008_store_payment_link_url"),
    ]

    operations = [migrations.RunPython(create_missing_default_rules, migrations.RunPython.noop)]
