"""Livra's pages read in French and Arabic: every admin page people use, rendered in each language,
holds no English left behind (tests/i18n/untranslated.py says how that is found).

The pages are found, not listed: each registered admin's list, add and change pages, its history,
and each page its ``get_urls`` adds, on a store whose data (names, address, texts) is written in
Arabic so that only the interface's own words can be caught.
"""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse

from messaging.models import InboundMessage, MessageTemplate
from orders.api.tokens import api_token_create
from orders.models import Customer, Store
from tests.admin_rows import store_with_rows
from tests.factories import UserFactory
from tests.i18n.untranslated import english_left

pytestmark = pytest.mark.django_db

LANGUAGES = ["fr", "ar"]
STANDARD_VIEWS = {"changelist", "add", "change", "history", "delete"}
# Views that answer a POST only: nothing to read in a language.
NOT_PAGES = {
    "messaging_message_resend",
    "orders_order_transition",
    "orders_storedelivery_retry",
    "orders_store_rotate_secret",
    "messaging_messagetemplate_preview",
}
# Django's user and group pages and django-celery-beat's: they must render in each language, but
# their remaining English is upstream's (Django keeps permission names as stored, in English, and
# leaves parts of its password help untranslated; beat leaves some labels unmarked).
UPSTREAM_APPS = {"auth", "django_celery_beat"}


@pytest.fixture
def rows():
    """One row of every model, in a store whose data is Arabic."""
    store_rows = store_with_rows(
        "متجر الأطلس",
        "atlas-souk",
        customer__name="ياسمين العلوي",
        customer__language=Customer.Language.ARABIC,
        shipping_address="١٢ شارع ابن بطوطة",
        shipping_city="الدار البيضاء",
        item__title="قفطان مطرز",
    )
    # What the rows' helper writes in other languages: a customer's words, a template's text.
    InboundMessage.objects.update(text="ما فهمت")
    MessageTemplate.objects.filter(store=store_rows.store).update(language="ar", body="طردك {order_number}")
    return store_rows


@pytest.fixture
def superuser(client, rows):
    user = UserFactory(username="مدير", is_superuser=True)
    api_token_create(user, name="متجري")  # so that the token's pages have one to show
    client.force_login(user)
    return user


def admin_pages(rows, user) -> list[tuple[str, str]]:
    """(name, url) of every admin page Livra registers, with the rows' objects where needed."""
    request = RequestFactory().get("/admin/")
    request.user = user
    pages = [("index", reverse("admin:index"))]
    for model, model_admin in admin.site._registry.items():
        label = f"{model._meta.app_label}_{model._meta.model_name}"
        obj = rows.rows.get(model) or model._default_manager.order_by("pk").first()
        pages.append((f"{label} list", reverse(f"admin:{label}_changelist")))
        if model_admin.has_add_permission(request):
            pages.append((f"{label} add", reverse(f"admin:{label}_add")))
        if obj is not None:
            pages.append((f"{label} change", reverse(f"admin:{label}_change", args=[obj.pk])))
            pages.append((f"{label} history", reverse(f"admin:{label}_history", args=[obj.pk])))
        for pattern in model_admin.get_urls():
            name = getattr(pattern, "name", None)
            if not name or name.removeprefix(f"{label}_") in STANDARD_VIEWS or name in NOT_PAGES:
                continue
            try:
                url = reverse(f"admin:{name}")
            except NoReverseMatch:
                if obj is None:
                    continue
                url = reverse(f"admin:{name}", args=[obj.pk])
            pages.append((name, url))
    return pages


def test_every_livra_admin_has_its_pages_checked(rows, superuser):
    names = {name for name, _ in admin_pages(rows, superuser)}

    for model in admin.site._registry:
        if model._meta.app_label in {"orders", "messaging", "automations", "carriers"}:
            assert f"{model._meta.app_label}_{model._meta.model_name} list" in names


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_admin_page_reads_in_the_language_without_english_left(client, superuser, rows, language):
    problems = {}
    for name, url in admin_pages(rows, superuser):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE=language, follow=True)
        if response.status_code != 200:
            problems[name] = f"answered {response.status_code}"
            continue
        if name.split("_")[0] in UPSTREAM_APPS or name.startswith("django_celery_beat"):
            continue
        left = english_left(response.content.decode(), language)
        if left:
            problems[name] = left

    assert not problems, "English left on these pages:\n" + "\n".join(
        f"{name}: {left}" for name, left in problems.items()
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_login_page_reads_in_the_language(client, language):
    response = client.get(reverse("admin:login"), HTTP_ACCEPT_LANGUAGE=language)

    assert english_left(response.content.decode(), language) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_sandbox_phone_reads_in_the_language(client, superuser, rows, language):
    customer = rows.rows[Customer]
    pages = [
        reverse("messaging:sandbox-phone-customers"),
        reverse("messaging:sandbox-phone", args=[customer.pk]),
    ]

    left = {
        url: english_left(client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode(), language)
        for url in pages
    }

    assert left == {url: [] for url in pages}


def test_an_arabic_page_is_right_to_left(client, superuser):
    response = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="ar")

    assert 'dir="rtl"' in response.content.decode()


def test_the_language_switch_changes_the_language_of_the_next_page(client, superuser):
    client.post(reverse("set_language"), {"language": "fr", "next": reverse("admin:index")})

    response = client.get(reverse("admin:orders_order_changelist"))

    assert response.headers["Content-Language"] == "fr"
    assert 'lang="fr"' in response.content.decode()


def test_the_store_list_shows_the_language_switch(client, superuser):
    response = client.get(reverse("admin:orders_store_changelist"), HTTP_ACCEPT_LANGUAGE="ar")

    assert 'name="language"' in response.content.decode()
    assert Store.objects.exists()
