"""Give the groups the store inbox: ops agents and store admins see deliveries and retry them."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_PERMISSIONS = {
    "Ops agent": ["view_storedelivery", "retry_storedelivery"],
    "Store admin": ["view_storedelivery", "retry_storedelivery"],
}


def grant_store_delivery_permissions(apps, schema_editor):
    create_permissions(global_apps.get_app_config("orders"), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="orders", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [("orders", "0004_store_ingestion")]

    operations = [migrations.RunPython(grant_store_delivery_permissions, migrations.RunPython.noop)]
