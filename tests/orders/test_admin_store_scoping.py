"""Stores kept apart in admin, page by page: a member of one store never sees, picks or touches
another store's rows (issue 10, point 6). Two stores, "Atlas Souk" (the agent's) and "Other
Bazaar"; every Livra admin is checked with a row of each."""

import pytest
from django.contrib import admin
from django.contrib.admin import RelatedFieldListFilter
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from automations.models import QueueEntry, Rule, RuleRevision, SweepRun, TeamAlert, Timer
from carriers.models import (
    CarrierAccount,
    CarrierCity,
    CityCorrection,
    DispatchBatch,
    RemittanceLine,
    RemittanceStatement,
    Shipment,
    StatusMapping,
    TrackingEvent,
)
from messaging.models import (
    ChannelProvider,
    Consent,
    InboundMessage,
    Message,
    MessageTemplate,
    MessagingSettings,
    Notification,
    ProviderWebhook,
)
from orders.admin_scoping import StoreScopedAdmin, StoreScopedInline
from orders.api.models import ApiToken
from orders.models import Customer, Order, Store, StoreDelivery
from orders.transitions import OrderStatus
from tests.admin_rows import store_with_rows
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIVRA_APPS = ("orders", "messaging", "automations", "carriers")
MINE, THEIRS = "Atlas Souk", "Other Bazaar"


@pytest.fixture
def mine():
    return store_with_rows(MINE, "atlas-souk")


@pytest.fixture
def theirs():
    return store_with_rows(THEIRS, "other-bazaar")


@pytest.fixture
def agent(client, mine, theirs):
    """A member of Atlas Souk only, holding every Livra permission (the scoping, not the
    permissions, is what keeps Other Bazaar away)."""
    user = UserFactory(stores=[mine.store])
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=LIVRA_APPS))
    client.force_login(user)
    return user


SCOPED_MODELS = [
    Store,
    Customer,
    Order,
    StoreDelivery,
    Notification,
    Message,
    MessageTemplate,
    MessagingSettings,
    ChannelProvider,
    Consent,
    ProviderWebhook,
    InboundMessage,
    Rule,
    RuleRevision,
    Timer,
    TeamAlert,
    QueueEntry,
    CarrierAccount,
    Shipment,
    StatusMapping,
    TrackingEvent,
    CityCorrection,
    RemittanceStatement,
    RemittanceLine,
    DispatchBatch,
]


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def listed_pks(response) -> set:
    return {row.pk for row in response.context["cl"].result_list}


# --- every admin is scoped -------------------------------------------------------------------
# API tokens belong to a user, not a store: each user sees only their own (what the token may
# reach follows the owner's memberships); tests/api/test_api_tokens.py shows it.
SCOPED_BY_OWNER = {ApiToken}


def livra_model_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in LIVRA_APPS and model not in SCOPED_BY_OWNER
    ]


def test_every_livra_admin_and_inline_is_store_scoped():
    unscoped = [
        type(model_admin).__name__
        for _, model_admin in livra_model_admins()
        if not isinstance(model_admin, StoreScopedAdmin)
    ]
    unscoped += [
        inline.__name__
        for _, model_admin in livra_model_admins()
        for inline in model_admin.inlines
        if not issubclass(inline, StoreScopedInline)
    ]
    assert unscoped == []


def test_every_livra_admin_is_checked_page_by_page_here():
    # A new admin must come with its rows in store_with_rows (or be superuser-only like sweep runs
    # and the carriers' city lists, which are every store's).
    registered = {model for model, _ in livra_model_admins()}
    assert registered == {*SCOPED_MODELS, SweepRun, CarrierCity}


# --- lists, pages, filters ---------------------------------------------------------------------
@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_the_list_shows_only_the_member_stores_rows(client, agent, mine, theirs, model):
    response = client.get(url(model, "changelist"), {"state": "all"} if model is QueueEntry else {})

    assert response.status_code == 200
    assert mine.rows[model].pk in listed_pks(response)
    assert theirs.rows[model].pk not in listed_pks(response)
    assert THEIRS not in response.content.decode()  # not in a row, nor in a filter's choices


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_another_stores_row_is_not_found_on_any_of_its_pages(client, agent, mine, theirs, model):
    theirs_pk = theirs.rows[model].pk

    assert client.get(url(model, "change", mine.rows[model].pk)).status_code == 200
    assert client.get(url(model, "change", theirs_pk)).status_code == 404
    assert client.get(url(model, "history", theirs_pk)).status_code == 404
    assert client.post(url(model, "delete", theirs_pk), {"post": "yes"}).status_code == 404
    assert model.objects.filter(pk=theirs_pk).exists()


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_relation_filters_offer_only_the_member_stores_and_their_rules(client, agent, mine, theirs, model):
    response = client.get(url(model, "changelist"))

    for spec in response.context["cl"].filter_specs:
        if not isinstance(spec, RelatedFieldListFilter):
            continue
        offered = {pk for pk, _ in spec.lookup_choices}
        if spec.field.related_model is Store:
            assert offered == {mine.store.pk}
        if spec.field.related_model is Rule:
            assert offered <= set(Rule.objects.filter(store=mine.store).values_list("pk", flat=True))


def test_a_superuser_sees_every_store(client, mine, theirs):
    client.force_login(UserFactory(is_superuser=True))

    response = client.get(url(Order, "changelist"))

    assert listed_pks(response) >= {mine.rows[Order].pk, theirs.rows[Order].pk}


def test_sweep_runs_which_count_every_stores_timers_are_for_superusers_only(client, agent):
    run = SweepRun.objects.create(started_at=timezone.now(), fired=1, error_text="timer 9: boom")

    assert client.get(url(SweepRun, "changelist")).status_code == 403
    assert client.get(url(SweepRun, "change", run.pk)).status_code == 403
    assert "sweeprun" not in client.get(reverse("admin:index")).content.decode()


def test_the_carriers_city_lists_are_for_superusers_only(client, agent, mine):
    city = mine.rows[CarrierCity]

    assert client.get(url(CarrierCity, "changelist")).status_code == 403
    assert client.get(url(CarrierCity, "change", city.pk)).status_code == 403


def test_the_admin_index_lists_the_models_but_no_other_stores_names(client, agent):
    page = client.get(reverse("admin:index")).content.decode()

    assert "Orders" in page
    assert THEIRS not in page


# --- actions on a mixed selection ---------------------------------------------------------------
def act(client, model, action: str, *rows):
    return client.post(
        url(model, "changelist") + ("?state=all" if model is QueueEntry else ""),
        {"action": action, "_selected_action": [row.pk for row in rows]},
    )


def test_disabling_rules_of_two_stores_disables_only_the_members_one(client, agent, mine, theirs):
    act(client, Rule, "disable_rules", mine.rows[Rule], theirs.rows[Rule])

    assert Rule.objects.get(pk=mine.rows[Rule].pk).enabled is False
    assert Rule.objects.get(pk=theirs.rows[Rule].pk).enabled is True


def test_marking_queue_entries_of_two_stores_done_closes_only_the_members_one(client, agent, mine, theirs):
    act(client, QueueEntry, "mark_done", mine.rows[QueueEntry], theirs.rows[QueueEntry])

    assert QueueEntry.objects.get(pk=mine.rows[QueueEntry].pk).state == QueueEntry.State.DONE
    assert QueueEntry.objects.get(pk=theirs.rows[QueueEntry].pk).state == QueueEntry.State.OPEN


def test_marking_replies_of_two_stores_handled_marks_only_the_members_one(client, agent, mine, theirs):
    act(client, InboundMessage, "mark_handled", mine.rows[InboundMessage], theirs.rows[InboundMessage])

    assert InboundMessage.objects.get(pk=mine.rows[InboundMessage].pk).handled is True
    assert InboundMessage.objects.get(pk=theirs.rows[InboundMessage].pk).handled is False


def test_retrying_deliveries_of_two_stores_retries_only_the_members_one(client, agent, mine, theirs):
    act(client, StoreDelivery, "retry_deliveries", mine.rows[StoreDelivery], theirs.rows[StoreDelivery])

    assert StoreDelivery.objects.get(pk=mine.rows[StoreDelivery].pk).status != StoreDelivery.Status.FAILED
    assert StoreDelivery.objects.get(pk=theirs.rows[StoreDelivery].pk).status == StoreDelivery.Status.FAILED


def test_deleting_providers_of_two_stores_deletes_only_the_members_one(client, agent, mine, theirs):
    response = act(
        client, ChannelProvider, "delete_selected", mine.rows[ChannelProvider], theirs.rows[ChannelProvider]
    )
    client.post(
        url(ChannelProvider, "changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [mine.rows[ChannelProvider].pk, theirs.rows[ChannelProvider].pk],
            "post": "yes",
        },
    )

    assert THEIRS not in response.content.decode()  # the confirmation page lists only the member's
    assert not ChannelProvider.objects.filter(pk=mine.rows[ChannelProvider].pk).exists()
    assert ChannelProvider.objects.filter(pk=theirs.rows[ChannelProvider].pk).exists()


def test_resending_messages_of_two_stores_resends_only_the_members_one(client, agent, mine, theirs):
    ids = f"{mine.rows[Message].pk},{theirs.rows[Message].pk}"
    Message.objects.filter(pk__in=[mine.rows[Message].pk, theirs.rows[Message].pk]).update(
        status=Message.Status.FAILED
    )

    page = client.get(reverse("admin:messaging_message_resend"), {"ids": ids})
    client.post(
        reverse("admin:messaging_message_resend"), {"ids": ids.split(","), "reason": "customer asked"}
    )

    assert [row["message"].pk for row in page.context["rows"]] == [mine.rows[Message].pk]
    assert Message.objects.filter(fallback_from=mine.rows[Message]).exists()
    assert not Message.objects.filter(fallback_from=theirs.rows[Message]).exists()


# --- forms: foreign-key choices and what may be posted -----------------------------------------
@pytest.mark.parametrize(
    "model",
    [Customer, Order, MessageTemplate, MessagingSettings, ChannelProvider, Rule],
    ids=lambda model: model.__name__,
)
def test_an_add_form_offers_only_the_member_stores(client, agent, mine, model):
    response = client.get(url(model, "add"))

    assert list(response.context["adminform"].form.fields["store"].queryset) == [mine.store]


def provider_data(store) -> dict:
    return {
        "store": store.pk,
        "channel": "email",
        "provider": "smtp",
        "sender": "",
        "credentials_env_prefix": "",
        "enabled": "on",
    }


def test_a_provider_cannot_be_added_to_another_store(client, agent, theirs):
    ChannelProvider.objects.filter(store=theirs.store, channel="email").delete()

    response = client.post(url(ChannelProvider, "add"), provider_data(theirs.store))

    assert response.status_code == 200
    assert "store" in response.context["adminform"].form.errors
    assert not ChannelProvider.objects.filter(store=theirs.store, channel="email").exists()


def test_a_template_cannot_be_added_for_another_store(client, agent, theirs):
    data = {
        "store": theirs.store.pk,
        "event": "order_delivered",
        "channel": "sms",
        "language": "fr",
        "purpose": "transactional",
        "body": "Livré {order_number}",
        "body_parameters": "[]",
        "buttons": "[]",
    }

    response = client.post(url(MessageTemplate, "add"), data)

    assert "store" in response.context["adminform"].form.errors
    assert not MessageTemplate.objects.filter(store=theirs.store, event="order_delivered").exists()


def test_a_member_cannot_make_a_default_template_for_every_store(client, agent):
    response = client.get(url(MessageTemplate, "add"))

    assert response.context["adminform"].form.fields["store"].required is True


def test_default_templates_are_shown_to_members_read_only(client, agent):
    default = MessageTemplate.objects.filter(store=None).first()

    page = client.get(url(MessageTemplate, "change", default.pk))
    saved = client.post(url(MessageTemplate, "change", default.pk), {"body": "changed"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert saved.status_code == 403
    assert MessageTemplate.objects.get(pk=default.pk).body == default.body


def test_the_customer_search_of_the_order_form_finds_only_the_member_stores_customers(
    client, agent, mine, theirs
):
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "orders", "model_name": "order", "field_name": "customer", "term": "Client"},
    )

    assert [int(result["id"]) for result in response.json()["results"]] == [mine.rows[Customer].pk]


def test_a_consent_cannot_be_recorded_for_another_stores_customer(client, agent, theirs):
    customer = theirs.rows[Customer]

    response = client.post(
        url(Consent, "add"),
        {"customer": customer.pk, "channel": "email", "status": "opted_out", "reason": "phone call"},
    )

    assert "customer" in response.context["adminform"].form.errors
    assert not Consent.objects.filter(customer=customer, channel="email").exists()


# --- custom views ------------------------------------------------------------------------------
def test_another_stores_order_cannot_be_moved_from_admin(client, agent, theirs):
    order = theirs.rows[Order]

    response = client.post(url(Order, "transition", order.pk), {"transition": "confirm"})

    assert response.status_code == 404
    assert Order.objects.get(pk=order.pk).status == OrderStatus.AWAITING_CONFIRMATION


def test_another_stores_webhook_secret_cannot_be_rotated(client, agent, theirs):
    before = theirs.store.webhook_secret

    response = client.post(url(Store, "rotate_secret", theirs.store.pk), {"rotated_at": "never"})

    assert response.status_code == 404
    assert Store.objects.get(pk=theirs.store.pk).webhook_secret == before


def test_another_stores_delivery_cannot_be_retried_from_its_page(client, agent, theirs):
    assert client.post(url(StoreDelivery, "retry", theirs.rows[StoreDelivery].pk)).status_code == 404


def test_another_stores_rule_cannot_be_dry_run(client, agent, theirs):
    assert client.get(url(Rule, "dry_run", theirs.rows[Rule].pk)).status_code == 404


def test_the_template_preview_cannot_render_another_stores_order(client, agent, theirs):
    order = theirs.rows[Order]

    response = client.post(
        reverse("admin:messaging_messagetemplate_preview"),
        {"order": order.number, "language": "fr", "body": "{customer_name}", "body_parameters": "[]"},
    )

    assert response.status_code == 400
    assert order.customer.name not in response.content.decode()


def test_a_reply_from_an_unknown_sender_shows_in_the_inbox_of_the_store_its_webhook_named(
    client, agent, mine, theirs
):
    unknown = InboundMessage.objects.create(
        webhook=mine.rows[ProviderWebhook],
        channel="sms",
        provider="sandbox",
        sender="+212600000999",
        intent="other",
    )
    elsewhere = InboundMessage.objects.create(
        webhook=theirs.rows[ProviderWebhook],
        channel="sms",
        provider="sandbox",
        sender="+212600000998",
        intent="other",
    )

    response = client.get(url(InboundMessage, "changelist"))

    assert unknown.pk in listed_pks(response)
    assert elsewhere.pk not in listed_pks(response)
