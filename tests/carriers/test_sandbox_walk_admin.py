"""The sandbox carrier's walk rates in admin: on the sandbox account's page, with permissions, per store."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from carriers.models import CarrierAccount, SandboxWalkSettings
from carriers.services import sandbox_walk_settings_for
from tests.factories import CarrierAccountFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

ACCOUNT_PERMISSIONS = ["view_carrieraccount", "change_carrieraccount"]
RATE_PERMISSIONS = ["view_sandboxwalksettings", "change_sandboxwalksettings", "add_sandboxwalksettings"]


@pytest.fixture
def account():
    return CarrierAccountFactory(name="Sandbox Casablanca")


def member(client, store, codenames):
    user = UserFactory(username="ops", is_staff=True, stores=[store])
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="carriers", codename__in=codenames)
    )
    client.force_login(user)
    return user


def change_url(account) -> str:
    return reverse("admin:carriers_carrieraccount_change", args=[account.pk])


def form_data(account: CarrierAccount, walk_settings: SandboxWalkSettings | None, **rates) -> dict:
    """The account's change form as the page posts it, with the walk's rates in its inline."""
    data = {
        "store": account.store_id,
        "carrier": account.carrier,
        "name": account.name,
        "env_prefix": account.env_prefix,
        "webhook_secret_env": "",
        "pickup_address": "{}",
        "default_options": "{}",
        "enabled": "on",
        "sandbox_walk_settings-TOTAL_FORMS": "1",
        "sandbox_walk_settings-INITIAL_FORMS": "1" if walk_settings else "0",
        "sandbox_walk_settings-MIN_NUM_FORMS": "0",
        "sandbox_walk_settings-MAX_NUM_FORMS": "1",
        "sandbox_walk_settings-0-account": account.pk,
    }
    if walk_settings:
        data["sandbox_walk_settings-0-id"] = walk_settings.pk
    values = {
        "minutes_between_steps": 1,
        "transit_hops": 2,
        "failed_attempt_share": 20,
        "refused_share": 8,
        "returned_after_failures_share": 30,
        "lost_share": 1,
        "max_attempts": 3,
        **rates,
    }
    data.update({f"sandbox_walk_settings-0-{name}": value for name, value in values.items()})
    return data


def test_a_member_with_the_permission_sets_the_walk_rates_of_their_sandbox_account(client, account):
    member(client, account.store, ACCOUNT_PERMISSIONS + RATE_PERMISSIONS)

    response = client.post(
        change_url(account), form_data(account, None, minutes_between_steps=3, refused_share=40)
    )

    assert response.status_code == 302, response.context["inline_admin_formsets"][0].formset.errors
    walk_settings = SandboxWalkSettings.objects.get(account=account)
    assert (walk_settings.minutes_between_steps, walk_settings.refused_share) == (3, 40)


def test_rates_already_set_are_changed_in_place(client, account):
    walk_settings = sandbox_walk_settings_for(account)
    member(client, account.store, ACCOUNT_PERMISSIONS + RATE_PERMISSIONS)

    response = client.post(change_url(account), form_data(account, walk_settings, lost_share=0))

    assert response.status_code == 302
    assert SandboxWalkSettings.objects.get().lost_share == 0


def test_shares_adding_up_to_more_than_every_parcel_are_refused(client, account):
    member(client, account.store, ACCOUNT_PERMISSIONS + RATE_PERMISSIONS)

    response = client.post(
        change_url(account), form_data(account, None, failed_attempt_share=60, refused_share=50)
    )

    assert response.status_code == 200
    assert "cannot add up to more than 100" in response.content.decode()
    assert not SandboxWalkSettings.objects.exists()


def test_without_the_permission_a_member_neither_sees_nor_changes_the_rates(client, account):
    walk_settings = sandbox_walk_settings_for(account)
    member(client, account.store, ACCOUNT_PERMISSIONS)

    page = client.get(change_url(account))
    client.post(change_url(account), form_data(account, walk_settings, lost_share=90, refused_share=0))

    assert "sandbox_walk_settings-0-lost_share" not in page.content.decode()
    assert SandboxWalkSettings.objects.get().lost_share == 1


def test_the_rates_are_shown_on_sandbox_accounts_only(client, account):
    other = CarrierAccountFactory(store=account.store, carrier="sendit", env_prefix="LIVRA_SENDIT")
    member(client, account.store, ACCOUNT_PERMISSIONS + RATE_PERMISSIONS)

    assert "sandbox_walk_settings-0-lost_share" in client.get(change_url(account)).content.decode()
    assert "sandbox_walk_settings" not in client.get(change_url(other)).content.decode()


def test_another_stores_sandbox_account_and_its_rates_are_not_found(client, account):
    sandbox_walk_settings_for(account)
    member(client, StoreFactory(), ACCOUNT_PERMISSIONS + RATE_PERMISSIONS)

    assert client.get(change_url(account)).status_code == 404
    response = client.post(
        change_url(account), form_data(account, account.sandbox_walk_settings, lost_share=90)
    )
    assert response.status_code == 404
    assert SandboxWalkSettings.objects.get().lost_share == 1
