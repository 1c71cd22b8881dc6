"""Create the groups "Ops agent", "Confirmation agent" and "Store admin" with their permissions.

Re-running adds missing permissions and never removes what an admin granted by hand.
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

# Changing a group later means a new migration: this one stays as it ran.
GROUP_PERMISSIONS = {
    "Confirmation agent": [
        "orders.view_store",
        "orders.view_customer",
        "orders.view_order",
        "orders.view_orderitem",
        "orders.view_orderevent",
        "messaging.view_message",
        "orders.change_customer",
        "orders.request_order_confirmation",
        "orders.confirm_order",
        "orders.cancel_order",
        "orders.reschedule_order_delivery",
    ],
    "Ops agent": [
        "orders.view_store",
        "orders.view_customer",
        "orders.view_order",
        "orders.view_orderitem",
        "orders.view_orderevent",
        "messaging.view_message",
        "orders.change_customer",
        "orders.change_order",
        "orders.request_order_confirmation",
        "orders.confirm_order",
        "orders.cancel_order",
        "orders.reschedule_order_delivery",
        "orders.accept_order",
        "orders.process_order",
        "orders.ship_order",
        "orders.mark_order_in_transit",
        "orders.mark_order_out_for_delivery",
        "orders.fail_order_delivery",
        "orders.deliver_order",
        "orders.initiate_order_return",
        "orders.mark_order_returned",
    ],
    "Store admin": [
        "orders.view_store",
        "orders.view_customer",
        "orders.view_order",
        "orders.view_orderitem",
        "orders.view_orderevent",
        "messaging.view_message",
        "orders.change_store",
        "orders.add_customer",
        "orders.change_customer",
        "orders.add_order",
        "orders.change_order",
        "orders.add_orderitem",
        "orders.change_orderitem",
        "orders.delete_orderitem",
        "orders.request_order_confirmation",
        "orders.confirm_order",
        "orders.cancel_order",
        "orders.reschedule_order_delivery",
        "orders.accept_order",
        "orders.process_order",
        "orders.ship_order",
        "orders.mark_order_in_transit",
        "orders.mark_order_out_for_delivery",
        "orders.fail_order_delivery",
        "orders.deliver_order",
        "orders.initiate_order_return",
        "orders.mark_order_returned",
        "orders.refund_order",
    ],
}


def create_default_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_label in ("orders", "messaging"):
        create_permissions(global_apps.get_app_config(app_label), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, perms in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("orders", "0001_initial"),
        ("messaging", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_default_groups, migrations.RunPython.noop)]
