"""API tokens: stored as a hash, shown once, accepted as ``Authorization: Token <key>``, revocable,
and made only by whom Django's permissions allow."""

import hashlib
import importlib
import re
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from orders.api.models import ApiToken
from orders.api.tokens import api_token_create, api_token_revoke
from tests.api.conftest import member_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ORDERS = reverse("api:orders")
ADD_TOKEN = reverse("admin:orders_apitoken_add")
TOKENS = reverse("admin:orders_apitoken_changelist")


def calling_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def key_on_page(response) -> str:
    return re.search(r'id="livra-api-key"[^>]* value="([^"]+)"', response.content.decode()).group(1)


# --- storage and authentication -------------------------------------------------------------------
def test_only_the_keys_hash_and_a_short_prefix_are_stored(user):
    token, key = api_token_create(user, name="checkout")

    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    assert key not in str(stored)
    assert stored["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(stored["prefix"]) and len(stored["prefix"]) == 11


def test_a_key_is_accepted_in_the_token_header_and_its_use_recorded(user):
    token, key = api_token_create(user, name="checkout")

    response = calling_with(key).get(ORDERS)

    assert response.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_revoked_token_is_refused_at_once(user):
    token, key = api_token_create(user, name="checkout")

    api_token_revoke(token, actor=user)

    response = calling_with(key).get(ORDERS)
    assert (response.status_code, response.json()) == (401, {"detail": "Token revoked."})


def test_an_expired_token_is_refused(user):
    _token, key = api_token_create(user, name="checkout", expires_at=timezone.now() + timedelta(days=1))

    with time_machine.travel(timezone.now() + timedelta(days=2)):
        response = calling_with(key).get(ORDERS)

    assert (response.status_code, response.json()) == (401, {"detail": "Token expired."})


def test_a_token_of_a_deactivated_user_is_refused(user):
    _token, key = api_token_create(user, name="checkout")
    user.is_active = False
    user.save()

    assert calling_with(key).get(ORDERS).status_code == 401


def test_a_key_that_differs_in_one_character_is_refused(user):
    _token, key = api_token_create(user, name="checkout")
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")

    assert calling_with(wrong).get(ORDERS).status_code == 401


# --- who may make tokens for whom -------------------------------------------------------------------
def test_a_store_admin_may_make_a_token_for_themself(user):
    token, _key = api_token_create(user, name="mine", actor=user)

    assert (token.user, token.created_by) == (user, user)


def test_a_store_admin_may_not_make_a_token_for_someone_else(user, store):
    colleague = member_of(store)

    with pytest.raises(PermissionDenied):
        api_token_create(colleague, name="theirs", actor=user)


def test_a_confirmation_agent_may_not_make_tokens(store):
    agent = member_of(store, groups=("Confirmation agent",))

    with pytest.raises(PermissionDenied):
        api_token_create(agent, name="mine", actor=agent)


def test_a_superuser_may_make_a_token_for_anyone(user):
    superuser = UserFactory(is_superuser=True)

    token, _key = api_token_create(user, name="for them", actor=superuser)

    assert (token.user, token.created_by) == (user, superuser)


# --- admin --------------------------------------------------------------------------------------------
def test_admin_shows_the_key_once_in_the_answer_to_the_form_and_never_again(client, user):
    client.force_login(user)

    created = client.post(ADD_TOKEN, {"name": "Custom checkout"})

    key = key_on_page(created)
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.key_hash) == (
        user,
        "Custom checkout",
        hashlib.sha256(key.encode()).hexdigest(),
    )
    assert "no-store" in created["Cache-Control"]
    for page in (TOKENS, reverse("admin:orders_apitoken_change", args=[token.pk])):
        shown = client.get(page).content.decode()
        assert key not in shown and f"{token.prefix}…" in shown
    assert calling_with(key).get(ORDERS).status_code == 200


def test_a_store_admin_sees_and_makes_only_their_own_tokens(client, user, store):
    colleague = member_of(store)
    api_token_create(colleague, name="colleague's")
    client.force_login(user)

    listed = client.get(TOKENS).content.decode()
    form = client.get(ADD_TOKEN).content.decode()

    assert "colleague&#x27;s" not in listed and "colleague's" not in listed
    assert 'name="user"' not in form


def test_a_superuser_makes_a_token_for_another_user_in_admin(client, user):
    client.force_login(UserFactory(is_superuser=True))

    client.post(ADD_TOKEN, {"user": user.pk, "name": "for them"})

    assert ApiToken.objects.get().user == user


def test_the_revoke_action_stops_the_selected_tokens(client, user):
    token, key = api_token_create(user, name="checkout")
    client.force_login(user)

    client.post(TOKENS, {"action": "revoke", "_selected_action": [token.pk]})

    assert calling_with(key).get(ORDERS).status_code == 401


# --- the command and the migration --------------------------------------------------------------------
def test_the_command_prints_a_key_that_works_and_stores_its_hash(user):
    out = StringIO()

    call_command("api_token_create", user.username, "--name", "ERP", stdout=out)

    key = out.getvalue().splitlines()[-1]
    assert ApiToken.objects.get().name == "ERP"
    assert calling_with(key).get(ORDERS).status_code == 200


def test_the_migration_hashes_the_old_clear_text_keys_so_they_keep_working_and_drops_them(user):
    # given: rest_framework.authtoken's table as it was, with one integration's key
    old_key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp with time zone "
            "NOT NULL, user_id bigint NOT NULL UNIQUE)"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)", [old_key, timezone.now(), user.pk])
    migration = importlib.import_module("orders.migrations.0011_hash_authtoken_keys")

    # when
    with connection.schema_editor() as schema_editor:
        migration.hash_authtoken_keys(apps, schema_editor)

    # then
    assert "authtoken_token" not in connection.introspection.table_names()
    assert ApiToken.objects.get().prefix == old_key[:8]
    assert calling_with(old_key).get(ORDERS).status_code == 200
