"""The store pages in admin: webhook URLs, Livra's secret shown once and rotated, the platform's
secret write-only, and who may do what."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from orders.models import Store
from orders.services.stores import platform_secret_set, webhook_secret_rotate, webhook_secrets_accepted
from orders.store_admin import rotation_marker
from tests.factories import StoreFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

PLATFORMS = ["generic", "shopify", "woocommerce", "youcan"]
PUBLIC_URL = "https://ops.example.com"
SHOPIFY_SECRET = "shpss_0123456789abcdef0123456789abcdef"


# --- helpers ---------------------------------------------------------------------------------
def store_admin(client):
    user = grant(UserFactory(stores=Store.objects.all()), "orders.view_store", "orders.change_store")
    client.force_login(user)
    return user


def store_viewer(client):
    user = grant(UserFactory(stores=Store.objects.all()), "orders.view_store")
    client.force_login(user)
    return user


def change_url(store) -> str:
    return reverse("admin:orders_store_change", args=[store.pk])


def rotate_url(store) -> str:
    return reverse("admin:orders_store_rotate_secret", args=[store.pk])


def change_form_data(store, **overrides) -> dict:
    data = {
        "name": store.name,
        "slug": store.slug,
        "platform": store.platform,
        "currency": store.currency,
        "default_phone_region": store.default_phone_region,
        "time_zone": str(store.time_zone),
        "ship_at": store.ship_at,
        "shop_domain": store.shop_domain,
        "cod_gateway_names": "\n".join(store.cod_gateway_names),
        "members": [user.pk for user in store.members.all()] if store.pk else [],
        "new_platform_secret": "",
    }
    return {**data, **overrides}


def endpoint_row(page: str, platform: str) -> str:
    match = re.search(rf'<tr id="webhook-endpoint-{platform}">(.*?)</tr>', page, re.S)
    assert match, f"no webhook row for {platform}"
    return match.group(1)


def flashed(response) -> list[str]:
    return [message.message for message in response.context["messages"]]


# --- webhook URLs ----------------------------------------------------------------------------
@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_store_page_shows_each_platforms_webhook_url_on_the_public_host(client, settings, platform):
    settings.LIVRA_PUBLIC_URL = PUBLIC_URL + "/"
    store = StoreFactory(slug="atlas-souk")
    store_viewer(client)

    page = client.get(change_url(store)).content.decode()

    assert f"{PUBLIC_URL}/webhooks/{platform}/atlas-souk/" in endpoint_row(page, platform)


@pytest.mark.parametrize(
    ("platform", "secret"),
    [
        ("shopify", "platform signing secret"),
        ("youcan", "platform signing secret"),
        ("woocommerce", "Livra's webhook secret"),
        ("generic", "Livra's webhook secret"),
    ],
)
def test_the_store_page_says_which_secret_signs_each_platforms_deliveries(client, platform, secret):
    store = StoreFactory()
    store_viewer(client)

    page = client.get(change_url(store)).content.decode()

    assert secret in endpoint_row(page, platform).replace("&#x27;", "'")


def test_the_generic_row_explains_the_signature_headers(client):
    store = StoreFactory()
    store_viewer(client)

    row = endpoint_row(client.get(change_url(store)).content.decode(), "generic")

    for header in ("X-Livra-Signature", "X-Livra-Timestamp", "X-Livra-Event-Id", "X-Livra-Topic"):
        assert header in row
    assert "HMAC-SHA256 of &quot;&lt;timestamp&gt;.&quot; followed by the raw body" in row


# --- Livra's webhook secret: never on the page -----------------------------------------------
def test_the_store_page_never_shows_the_webhook_secret_nor_the_previous_one(client):
    store = StoreFactory()
    previous = store.webhook_secret
    current = webhook_secret_rotate(store)
    store_admin(client)

    page = client.get(change_url(store)).content.decode()

    assert current not in page
    assert previous not in page


def test_a_change_form_refused_for_an_error_shows_neither_secret(client):
    store = StoreFactory()
    store_admin(client)

    response = client.post(
        change_url(store), change_form_data(store, name="", new_platform_secret=SHOPIFY_SECRET)
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert store.webhook_secret not in page
    assert SHOPIFY_SECRET not in page


def test_adding_a_store_shows_its_webhook_secret_once(client):
    client.force_login(UserFactory(is_superuser=True))
    data = change_form_data(StoreFactory.build(name="Atlas Souk", slug="atlas-souk"))

    response = client.post(reverse("admin:orders_store_add"), data)

    store = Store.objects.get(slug="atlas-souk")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert store.webhook_secret in response.content.decode()
    # Shown in that response only: nothing flashed for the next page carries it.
    assert store.webhook_secret not in client.get(change_url(store)).content.decode()


def test_adding_a_store_with_its_platform_secret_stores_it(client):
    client.force_login(UserFactory(is_superuser=True))
    data = change_form_data(StoreFactory.build(slug="atlas-souk"), new_platform_secret=SHOPIFY_SECRET)

    response = client.post(reverse("admin:orders_store_add"), data)

    assert response.status_code == 200
    assert Store.objects.get(slug="atlas-souk").platform_secret == SHOPIFY_SECRET
    assert SHOPIFY_SECRET not in response.content.decode()


# --- rotation --------------------------------------------------------------------------------
def test_rotating_shows_the_new_secret_once_and_keeps_the_previous_for_the_grace_period(client):
    store = StoreFactory()
    previous = store.webhook_secret
    store_admin(client)

    response = client.post(rotate_url(store), {"rotated_at": rotation_marker(store)})

    store.refresh_from_db()
    page = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert store.webhook_secret != previous
    assert store.webhook_secret in page
    assert previous not in page
    assert "keeps working for 24 hours" in page
    assert webhook_secrets_accepted(store) == [store.webhook_secret, previous]


def test_the_page_after_a_rotation_does_not_show_the_new_secret_again(client):
    store = StoreFactory()
    store_admin(client)
    client.post(rotate_url(store), {"rotated_at": rotation_marker(store)})
    store.refresh_from_db()

    page = client.get(change_url(store)).content.decode()

    assert store.webhook_secret not in page
    assert "previous secret is still accepted until" in page


def test_a_get_on_the_rotate_url_does_not_rotate(client):
    store = StoreFactory()
    secret = store.webhook_secret
    store_admin(client)

    response = client.get(rotate_url(store))

    store.refresh_from_db()
    assert response.status_code == 405
    assert store.webhook_secret == secret
    assert secret not in response.content.decode()


def test_rotating_without_the_change_permission_is_forbidden(client):
    store = StoreFactory()
    secret = store.webhook_secret
    store_viewer(client)

    response = client.post(rotate_url(store), {"rotated_at": rotation_marker(store)})

    store.refresh_from_db()
    assert response.status_code == 403
    assert store.webhook_secret == secret


def test_rotating_without_the_csrf_token_is_refused():
    client = Client(enforce_csrf_checks=True)
    store = StoreFactory()
    secret = store.webhook_secret
    store_admin(client)

    response = client.post(rotate_url(store), {"rotated_at": rotation_marker(store)})

    store.refresh_from_db()
    assert response.status_code == 403
    assert store.webhook_secret == secret


def test_the_same_rotate_form_posted_twice_rotates_once(client):
    # given: the form as loaded, posted once
    store = StoreFactory()
    original = store.webhook_secret
    store_admin(client)
    loaded_form = {"rotated_at": rotation_marker(store)}
    client.post(rotate_url(store), loaded_form)
    store.refresh_from_db()
    rotated = store.webhook_secret

    # when: it is posted again (a reload of the answer page)
    response = client.post(rotate_url(store), loaded_form, follow=True)

    # then: the secret the store still uses keeps its grace
    store.refresh_from_db()
    assert store.webhook_secret == rotated
    assert webhook_secrets_accepted(store) == [rotated, original]
    assert rotated not in response.content.decode()
    assert any("was not rotated again" in text for text in flashed(response))


def test_the_rotate_button_is_offered_to_who_may_change_the_store(client):
    store = StoreFactory()
    store_admin(client)

    page = client.get(change_url(store)).content.decode()

    assert f'action="{rotate_url(store)}"' in page
    assert "Rotate webhook secret" in page


def test_the_rotate_button_is_not_offered_to_who_may_only_view_the_store(client):
    store = StoreFactory()
    store_viewer(client)

    page = client.get(change_url(store)).content.decode()

    assert rotate_url(store) not in page


# --- the platform's secret: write-only -------------------------------------------------------
def test_the_platform_secret_is_saved_and_never_shown_back(client):
    store = StoreFactory()
    store_admin(client)

    response = client.post(change_url(store), change_form_data(store, new_platform_secret=SHOPIFY_SECRET))
    page = client.get(change_url(store)).content.decode()

    store.refresh_from_db()
    assert response.status_code == 302
    assert store.platform_secret == SHOPIFY_SECRET
    assert SHOPIFY_SECRET not in page
    assert re.search(r'class="platform-secret-state">set<', page)


def test_the_store_page_says_when_no_platform_secret_is_set(client):
    store = StoreFactory()
    store_viewer(client)

    page = client.get(change_url(store)).content.decode()

    assert re.search(r'class="platform-secret-state">not set<', page)


def test_a_blank_platform_secret_keeps_the_one_set(client):
    store = StoreFactory()
    platform_secret_set(store, SHOPIFY_SECRET)
    store_admin(client)

    response = client.post(change_url(store), change_form_data(store, new_platform_secret=""))

    store.refresh_from_db()
    assert response.status_code == 302
    assert store.platform_secret == SHOPIFY_SECRET


def test_the_platform_secret_field_is_a_password_input_labelled_to_keep_when_blank(client):
    store = StoreFactory()
    platform_secret_set(store, SHOPIFY_SECRET)
    store_admin(client)

    response = client.get(change_url(store))

    field = response.context["adminform"].form.fields["new_platform_secret"]
    assert field.label == "Platform signing secret (leave blank to keep)"
    assert 'type="password" name="new_platform_secret"' in response.content.decode()
    assert SHOPIFY_SECRET not in response.content.decode()


def test_a_user_who_may_only_view_the_store_gets_no_platform_secret_field(client):
    store = StoreFactory()
    store_viewer(client)

    page = client.get(change_url(store)).content.decode()

    assert "new_platform_secret" not in page


def test_saving_the_store_form_does_not_undo_a_rotation_made_meanwhile(client):
    # given: the form loaded, then the secret rotated elsewhere
    store = StoreFactory()
    store_admin(client)
    data = change_form_data(store, name="Atlas Souk")
    rotated = webhook_secret_rotate(Store.objects.get(pk=store.pk))

    client.post(change_url(store), data)

    store.refresh_from_db()
    assert store.name == "Atlas Souk"
    assert store.webhook_secret == rotated


# --- the other settings ----------------------------------------------------------------------
def test_members_cod_gateway_names_and_shop_domain_are_edited_on_the_store_page(client):
    store = StoreFactory()
    member = UserFactory()
    store_admin(client)

    response = client.post(
        change_url(store),
        change_form_data(
            store,
            members=[member.pk],
            cod_gateway_names="Cash on Delivery (COD)\n\n  paiement à la livraison \n",
            shop_domain="atlas-souk.myshopify.com",
        ),
    )

    store.refresh_from_db()
    assert response.status_code == 302
    assert list(store.members.all()) == [member]
    assert store.cod_gateway_names == ["Cash on Delivery (COD)", "paiement à la livraison"]
    assert store.shop_domain == "atlas-souk.myshopify.com"


def test_when_orders_are_shipped_is_set_on_the_store_page(client):
    store = StoreFactory()
    store_admin(client)

    response = client.post(change_url(store), change_form_data(store, ship_at="pickup"))

    store.refresh_from_db()
    assert response.status_code == 302
    assert store.ship_at == Store.ShipAt.PICKUP


def test_members_are_chosen_with_the_two_box_selector(client):
    store = StoreFactory()
    store_admin(client)

    page = client.get(change_url(store)).content.decode()

    assert 'class="selectfilter" data-field-name="members" data-is-stacked="0"' in page


def test_a_user_without_store_permissions_cannot_see_the_store_page(client):
    store = StoreFactory()
    client.force_login(UserFactory())

    responses = [client.get(change_url(store)), client.get(reverse("admin:orders_store_changelist"))]

    assert [response.status_code for response in responses] == [403, 403]


def test_a_user_who_may_only_view_cannot_change_the_store(client):
    store = StoreFactory(name="Atlas Souk")
    store_viewer(client)

    response = client.post(change_url(store), change_form_data(store, name="Renamed"))

    store.refresh_from_db()
    assert response.status_code == 403
    assert store.name == "Atlas Souk"
