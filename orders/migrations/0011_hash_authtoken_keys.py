"""Hash the keys of ``rest_framework.authtoken`` into API tokens, then drop its clear-text table.

Every integration keeps working: its key, sent as ``Authorization: Token <key>`` as before, now
matches an ``ApiToken`` by its SHA-256. The old table is dropped (it held the keys in clear), with
its rows in django_migrations, since the app has left INSTALLED_APPS. Not reversible: the keys
exist nowhere any more. Also lets store admins make and revoke their own tokens.
"""

import hashlib

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

OLD_TABLE = "authtoken_token"
GROUP_PERMISSIONS = {"Store admin": ["add_apitoken", "view_apitoken", "change_apitoken", "delete_apitoken"]}


def hash_authtoken_keys(apps, schema_editor):
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return  # a database made after rest_framework.authtoken left
    ApiToken = apps.get_model("orders", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {OLD_TABLE}")  # noqa: S608 - a constant
        rows = cursor.fetchall()
    ApiToken.objects.bulk_create(
        ApiToken(
            user_id=user_id,
            name="API token (made before tokens were hashed)",
            prefix=key[:8],
            key_hash=hashlib.sha256(key.encode()).hexdigest(),
            created_at=created,
        )
        for key, user_id, created in rows
    )
    schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(OLD_TABLE)}")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


def grant_api_token_permissions(apps, schema_editor):
    create_permissions(global_apps.get_app_config("orders"), apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="orders", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [("orders", "0010_api_token")]

    operations = [
        migrations.RunPython(hash_authtoken_keys, migrations.RunPython.noop),
        migrations.RunPython(grant_api_token_permissions, migrations.RunPython.noop),
    ]
