"""The ops view of messages on the order page, resending, and the messaging admin pages."""

import threading
import time

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from messaging.models import (
    ChannelProvider,
    Consent,
    ConsentEvent,
    Message,
    MessagingSettings,
    ProviderWebhook,
)
from messaging.providers import ErrorKind, ProviderError
from messaging.services.consent import consent_record
from messaging.services.resend import ResendRefused, message_resend
from orders.models import OrderEvent, Store
from orders.transitions import OrderStatus
from tests.factories import CustomerFactory, StoreFactory, UserFactory, grant, order_in_status
from tests.fakes.scripted_provider import SCRIPTED, accepted, use_scripted_provider

pytestmark = pytest.mark.django_db

CONFIRMATION_AGENT, OPS_AGENT = "Confirmation agent", "Ops agent"
REASON = "Customer called: never got the confirmation request"
# Session, user, the order, user and group permissions, items, timeline, messages (with the message
# each fell back from), their status histories, their fallbacks, the store's carrier accounts (the
# "Mark shipped" form suggests them): none of them per message.
ORDER_PAGE_QUERIES = 11
TIMEOUT = 10.0


# --- helpers ---------------------------------------------------------------------------------
def agent(*perms: str):
    """A confirmation agent: sees orders and their messages, may not resend."""
    return grant(UserFactory(groups=[CONFIRMATION_AGENT], stores=Store.objects.all()), *perms)


def resender():
    """An ops agent: the group has messaging.resend_message (migration messaging 0004)."""
    return UserFactory(groups=[OPS_AGENT], stores=Store.objects.all())


def change_url(order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def resend_url(*messages) -> str:
    return f"{reverse('admin:messaging_message_resend')}?ids={','.join(str(m.pk) for m in messages)}"


def flashed(response) -> list[str]:
    return [message.message for message in response.context["messages"]]


@pytest.fixture
def scripted():
    SCRIPTED.reset()
    yield SCRIPTED
    SCRIPTED.reset()


def scripted_order(status=OrderStatus.AWAITING_CONFIRMATION, **kwargs):
    """An order whose store sends through the scripted provider (no automatic receipts)."""
    store = StoreFactory()
    use_scripted_provider(store)
    return order_in_status(status, store=store, **kwargs)


@pytest.fixture
def sent_order(scripted, django_capture_on_commit_callbacks):
    """An order awaiting confirmation whose WhatsApp confirmation request the provider accepted."""
    with django_capture_on_commit_callbacks(execute=True):
        return scripted_order()


@pytest.fixture
def fallen_back_order(scripted, django_capture_on_commit_callbacks):
    """WhatsApp refused the number, so the SMS was sent: two messages and a fallback."""
    scripted.script(
        ProviderError(ErrorKind.INVALID_RECIPIENT, "63016", "not a WhatsApp user"), channel="whatsapp"
    )
    with django_capture_on_commit_callbacks(execute=True):
        return scripted_order()


def page_queries(client, order) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(change_url(order))
    assert response.status_code == 200
    return len(queries)


# --- the order page's ops view ---------------------------------------------------------------
def test_the_order_page_shows_each_messages_status_history(client, sent_order):
    client.force_login(agent())

    page = client.get(change_url(sent_order)).content.decode()

    # Statuses by their labels; what recorded each change is the technical trail, in English.
    assert "– → Queued" in page
    assert "Queued → Sending" in page
    assert "send task: attempt 1" in page
    assert "Sending → Sent (accepted by the provider)" in page


def test_the_order_page_shows_the_fallback_chain_both_ways(client, fallen_back_order):
    whatsapp, sms = fallen_back_order.messages.order_by("pk")
    client.force_login(agent())

    page = client.get(change_url(fallen_back_order)).content.decode()

    whatsapp_url = reverse("admin:messaging_message_change", args=[whatsapp.pk])
    sms_url = reverse("admin:messaging_message_change", args=[sms.pk])
    fallback_reason = "invalid_recipient on whatsapp (63016)"
    assert (
        f'after <a href="{whatsapp_url}">#{whatsapp.pk}</a> WhatsApp (Undeliverable): {fallback_reason}'
        in page
    )
    assert f'then <a href="{sms_url}">#{sms.pk}</a> SMS (Sent (accepted by the provider))' in page
    assert "Sending → Undeliverable" in page


def test_the_order_page_shows_each_messages_error_code(client, fallen_back_order):
    client.force_login(agent())

    response = client.get(change_url(fallen_back_order))

    [inline] = [i for i in response.context["inline_admin_formsets"] if i.opts.model is Message]
    assert "error_code" in [field["name"] for field in inline.fields()]
    assert "63016" in response.content.decode()


def test_the_order_page_query_count_does_not_grow_with_its_messages(client, sent_order, fallen_back_order):
    # given one order with a single message, and one with a fallback and two resends
    user = resender()
    sms = fallen_back_order.messages.get(channel="sms")
    first = message_resend(sms, actor=user, reason=REASON)
    Message.objects.filter(pk=first.pk).update(status=Message.Status.DELIVERED)
    message_resend(sms, actor=user, reason="again")
    assert fallen_back_order.messages.count() == 4
    client.force_login(user)
    client.get(change_url(sent_order))  # warm the session and content type caches

    # when / then
    assert page_queries(client, sent_order) == ORDER_PAGE_QUERIES
    assert page_queries(client, fallen_back_order) == ORDER_PAGE_QUERIES


def test_the_order_page_offers_a_resend_to_agents_allowed_to_resend(client, sent_order):
    client.force_login(resender())

    page = client.get(change_url(sent_order)).content.decode()

    assert f'href="{resend_url(sent_order.messages.get())}">Resend…</a>' in page


def test_the_order_page_offers_no_resend_to_other_agents(client, sent_order):
    client.force_login(agent())

    page = client.get(change_url(sent_order)).content.decode()

    assert "Resend…" not in page


def test_a_message_still_being_sent_has_no_resend_button(client):
    order = order_in_status(OrderStatus.AWAITING_CONFIRMATION)  # on-commit send never ran: queued
    client.force_login(resender())

    page = client.get(change_url(order)).content.decode()

    assert "Resend…" not in page


# --- resend: the service ---------------------------------------------------------------------
def test_a_resend_queues_a_new_message_on_the_same_channel_pointing_to_the_original(sent_order):
    original = sent_order.messages.get()

    resent = message_resend(original, actor=resender(), reason=REASON)

    assert resent.pk != original.pk
    assert (resent.status, resent.channel, resent.event) == (
        Message.Status.QUEUED,
        "whatsapp",
        original.event,
    )
    assert (resent.order, resent.customer, resent.recipient) == (
        sent_order,
        original.customer,
        original.recipient,
    )
    assert resent.notification is None
    assert resent.fallback_from == original
    assert resent.fallback_reason == f"resent by agent: {REASON}"
    assert resent.idempotency_key == f"resend:{original.pk}:1"
    original.refresh_from_db()
    assert original.status == Message.Status.SENT  # the original keeps its own story


def test_a_resend_writes_an_order_event_with_the_reason_and_the_agent(sent_order):
    user = resender()

    resent = message_resend(sent_order.messages.get(), actor=user, reason=REASON)

    event = sent_order.events.get(type="message_resent")
    assert (event.source, event.actor, event.reason) == (OrderEvent.Source.AGENT, user, REASON)
    assert event.payload["message_id"] == resent.pk
    assert event.to_status == "" and event.status_version is None


def test_a_resend_is_sent_once_the_transaction_commits(sent_order, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        resent = message_resend(sent_order.messages.get(), actor=resender(), reason=REASON)

    resent.refresh_from_db()
    assert len(callbacks) == 1
    assert resent.status == Message.Status.SENT
    assert resent.body.startswith("Bonjour ")


def test_a_message_resent_twice_gets_numbered_resends(sent_order, django_capture_on_commit_callbacks):
    original, user = sent_order.messages.get(), resender()
    with django_capture_on_commit_callbacks(execute=True):
        message_resend(original, actor=user, reason=REASON)

    second = message_resend(original, actor=user, reason="still nothing")

    assert second.idempotency_key == f"resend:{original.pk}:2"


def test_a_second_resend_is_refused_while_the_first_is_still_being_sent(sent_order):
    original, user = sent_order.messages.get(), resender()
    message_resend(original, actor=user, reason=REASON)

    with pytest.raises(ResendRefused, match="just resent"):
        message_resend(original, actor=user, reason=REASON)

    assert sent_order.messages.count() == 2


def test_a_resend_without_the_permission_is_refused_and_leaves_no_rows(sent_order):
    with pytest.raises(PermissionDenied):
        message_resend(sent_order.messages.get(), actor=agent(), reason=REASON)

    assert sent_order.messages.count() == 1
    assert not sent_order.events.filter(type="message_resent").exists()


def test_a_resend_needs_a_reason(sent_order):
    with pytest.raises(ResendRefused, match="reason is required"):
        message_resend(sent_order.messages.get(), actor=resender(), reason="   ")

    assert sent_order.messages.count() == 1


def test_a_message_still_queued_cannot_be_resent():
    order = order_in_status(OrderStatus.AWAITING_CONFIRMATION)

    with pytest.raises(ResendRefused, match="still being sent"):
        message_resend(order.messages.get(), actor=resender(), reason=REASON)


def test_a_customer_who_opted_out_of_the_channel_is_not_sent_a_resend(sent_order):
    consent_record(
        sent_order.customer, "whatsapp", Consent.Status.OPTED_OUT, source=Consent.Source.CUSTOMER_REPLY
    )

    with pytest.raises(ResendRefused, match="not consented to whatsapp"):
        message_resend(sent_order.messages.get(), actor=resender(), reason=REASON)

    assert sent_order.messages.count() == 1


class Session(threading.Thread):
    """Runs ``fn`` on its own thread, hence its own database connection, closed at the end."""

    def __init__(self, fn, *args, **kwargs):
        super().__init__(daemon=True)
        self.call, self.result, self.error, self.backend_pid = (fn, args, kwargs), None, None, None
        self.connected = threading.Event()

    def run(self):
        fn, args, kwargs = self.call
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '10s'")  # a deadlock fails the test, never hangs it
                cursor.execute("SELECT pg_backend_pid()")
                self.backend_pid = cursor.fetchone()[0]
            self.connected.set()
            self.result = fn(*args, **kwargs)
        except BaseException as exc:
            self.error = exc
        finally:
            self.connected.set()
            connection.close()

    def outcome(self):
        self.join(TIMEOUT)
        assert not self.is_alive(), "the session is still running"
        if self.error is not None:
            raise self.error
        return self.result


def started(fn, *args, **kwargs) -> Session:
    session = Session(fn, *args, **kwargs)
    session.start()
    assert session.connected.wait(TIMEOUT)
    return session


def wait_for(event: threading.Event, what: str) -> None:
    assert event.wait(TIMEOUT), f"gave up waiting for {what}"


def assert_blocked_by(waiter: Session, holder: Session) -> None:
    deadline = time.monotonic() + TIMEOUT
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT %s = ANY(pg_blocking_pids(%s))", [holder.backend_pid, waiter.backend_pid])
            if cursor.fetchone()[0]:
                return
            assert waiter.is_alive(), "the second resend returned instead of waiting for the lock"
            assert time.monotonic() < deadline, "the second resend never waited for the first one's lock"
            time.sleep(0.02)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_agents_resending_the_same_message_at_once_make_one_resend(scripted):
    # given a sent message, and a provider that holds the first resend's call until told
    order = scripted_order()
    original, first_agent, second_agent = order.messages.get(), resender(), resender()
    first_resend_made, let_first_commit, provider_may_answer = (threading.Event() for _ in range(3))

    def held_answer(outbound):
        wait_for(provider_may_answer, "the test to let the provider answer")
        return accepted("SC-HELD")

    scripted.script(held_answer)

    def first_resend():
        with transaction.atomic():
            resent = message_resend(original, actor=first_agent, reason=REASON)
            first_resend_made.set()
            wait_for(let_first_commit, "the test to let the first resend commit")
        return resent  # the send ran on commit, and waited at the provider

    # when the second agent resends while the first one's transaction holds the message
    first = started(first_resend)
    wait_for(first_resend_made, "the first resend")
    second = started(message_resend, original, actor=second_agent, reason="double click")
    assert_blocked_by(second, first)
    let_first_commit.set()

    # then the second one is refused: the first copy is still on its way
    with pytest.raises(ResendRefused, match="just resent"):
        second.outcome()
    provider_may_answer.set()
    resent = first.outcome()
    assert list(order.messages.exclude(pk=original.pk)) == [resent]
    assert order.events.filter(type="message_resent").count() == 1
    resent.refresh_from_db()
    assert (resent.status, resent.provider_message_id) == (Message.Status.SENT, "SC-HELD")


# --- resend: the admin -----------------------------------------------------------------------
def test_the_resend_page_shows_the_message_and_asks_for_a_reason(client, sent_order):
    message = sent_order.messages.get()
    client.force_login(resender())

    response = client.get(resend_url(message))

    assert response.status_code == 200
    assert [row["message"] for row in response.context["rows"]] == [message]
    assert 'name="reason"' in response.content.decode()


def test_resending_from_the_admin_queues_a_copy_and_returns_to_the_order(client, sent_order):
    original = sent_order.messages.get()
    user = resender()
    client.force_login(user)

    response = client.post(
        reverse("admin:messaging_message_resend"), {"ids": [original.pk], "reason": REASON}
    )

    resent = sent_order.messages.exclude(pk=original.pk).get()
    assert response.status_code == 302
    assert response["Location"] == change_url(sent_order)
    assert resent.fallback_from == original
    assert sent_order.events.get(type="message_resent").actor == user


def test_resending_from_the_admin_without_the_permission_is_forbidden(client, sent_order):
    original = sent_order.messages.get()
    client.force_login(agent())

    page = client.get(resend_url(original))
    post = client.post(reverse("admin:messaging_message_resend"), {"ids": [original.pk], "reason": REASON})

    assert (page.status_code, post.status_code) == (403, 403)
    assert sent_order.messages.count() == 1
    assert not sent_order.events.filter(type="message_resent").exists()


def test_resending_from_the_admin_without_a_reason_is_refused(client, sent_order):
    original = sent_order.messages.get()
    client.force_login(resender())

    response = client.post(reverse("admin:messaging_message_resend"), {"ids": [original.pk], "reason": " "})

    assert response.status_code == 400
    assert "Say why the message is resent" in response.content.decode()
    assert sent_order.messages.count() == 1


def test_a_refused_resend_is_reported_to_the_agent(client, sent_order):
    original = sent_order.messages.get()
    consent_record(
        sent_order.customer, "whatsapp", Consent.Status.OPTED_OUT, source=Consent.Source.CUSTOMER_REPLY
    )
    client.force_login(resender())

    response = client.post(
        reverse("admin:messaging_message_resend"), {"ids": [original.pk], "reason": REASON}, follow=True
    )

    assert flashed(response) == [
        f"Message #{original.pk}: Cannot resend: the customer has not consented to whatsapp messages."
    ]
    assert sent_order.messages.count() == 1


def test_the_resend_action_on_the_message_list_goes_to_the_resend_page(client, fallen_back_order):
    messages = list(fallen_back_order.messages.order_by("pk"))
    client.force_login(resender())

    response = client.post(
        reverse("admin:messaging_message_changelist"),
        {"action": "resend_messages", "_selected_action": [m.pk for m in messages]},
    )

    assert response.status_code == 302
    assert response["Location"] == resend_url(*messages)


def test_the_resend_action_is_not_offered_without_the_permission(client, sent_order):
    client.force_login(agent())

    response = client.get(reverse("admin:messaging_message_changelist"))

    assert response.status_code == 200
    assert "resend_messages" not in response.content.decode()


def test_the_message_page_links_to_its_resend(client, sent_order):
    message = sent_order.messages.get()
    client.force_login(resender())

    page = client.get(reverse("admin:messaging_message_change", args=[message.pk])).content.decode()

    assert f'href="{resend_url(message)}"' in page


# --- settings and providers ------------------------------------------------------------------
def settings_data(store, **overrides) -> dict[str, str]:
    data = {
        "store": str(store.pk),
        "channel_order": '["whatsapp", "sms"]',
        "transactional_policy": "implied",
        "quiet_hours_start": "21:00",
        "quiet_hours_end": "09:00",
        "receipt_timeouts": '{"whatsapp": 600, "sms": 900}',
    }
    data.update(overrides)
    return data


def test_messaging_settings_with_an_unknown_channel_are_refused(client):
    client.force_login(UserFactory(is_superuser=True))
    store = StoreFactory()

    response = client.post(
        reverse("admin:messaging_messagingsettings_add"),
        settings_data(store, channel_order='["whatsapp", "telegram"]'),
    )

    assert response.context["adminform"].form.errors["channel_order"] == [
        "Unknown channel(s): telegram. Channels: whatsapp, sms, email."
    ]
    assert not MessagingSettings.objects.filter(store=store).exists()


def test_a_receipt_timeout_out_of_range_is_refused(client):
    client.force_login(UserFactory(is_superuser=True))

    response = client.post(
        reverse("admin:messaging_messagingsettings_add"),
        settings_data(StoreFactory(), receipt_timeouts='{"whatsapp": 5, "fax": 60}'),
    )

    assert response.context["adminform"].form.errors["receipt_timeouts"] == [
        "The timeout for whatsapp must be between 60 and 86400 seconds.",
        "Unknown channel 'fax'. Channels: whatsapp, sms, email.",
    ]


def test_quiet_hours_need_both_ends(client):
    client.force_login(UserFactory(is_superuser=True))

    response = client.post(
        reverse("admin:messaging_messagingsettings_add"), settings_data(StoreFactory(), quiet_hours_end="")
    )

    assert response.context["adminform"].form.errors["quiet_hours_end"] == [
        "Set both ends of the quiet hours, or neither."
    ]


def test_good_messaging_settings_are_saved(client):
    client.force_login(UserFactory(is_superuser=True))
    store = StoreFactory()

    response = client.post(reverse("admin:messaging_messagingsettings_add"), settings_data(store))

    assert response.status_code == 302
    assert MessagingSettings.objects.get(store=store).channel_order == ["whatsapp", "sms"]


def provider_data(store, **overrides) -> dict[str, str]:
    data = {
        "store": str(store.pk),
        "channel": "sms",
        "provider": "sandbox",
        "sender": "+212600000000",
        "credentials_env_prefix": "LIVRA_SMS",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_a_provider_that_is_not_registered_is_refused(client):
    client.force_login(UserFactory(is_superuser=True))
    store = StoreFactory(providers=False)

    response = client.post(
        reverse("admin:messaging_channelprovider_add"), provider_data(store, provider="acme_sms")
    )

    [error] = response.context["adminform"].form.errors["provider"]
    assert "acme_sms is not one of the available choices" in error
    assert not ChannelProvider.objects.filter(store=store).exists()


def test_a_credentials_prefix_that_is_not_an_environment_variable_name_is_refused(client):
    client.force_login(UserFactory(is_superuser=True))

    response = client.post(
        reverse("admin:messaging_channelprovider_add"),
        provider_data(StoreFactory(), credentials_env_prefix="sk_live_abc123"),
    )

    assert response.context["adminform"].form.errors["credentials_env_prefix"]


def test_the_provider_form_says_credentials_come_from_the_environment_and_are_never_shown(client):
    client.force_login(UserFactory(is_superuser=True))

    response = client.get(reverse("admin:messaging_channelprovider_add"))

    help_text = response.context["adminform"].form.fields["credentials_env_prefix"].help_text
    assert "read from environment variables" in help_text
    assert "never stored or displayed" in help_text


def test_a_registered_provider_is_saved(client):
    client.force_login(UserFactory(is_superuser=True))
    store = StoreFactory(providers=False)

    response = client.post(reverse("admin:messaging_channelprovider_add"), provider_data(store))

    assert response.status_code == 302
    assert ChannelProvider.objects.get(store=store).provider == "sandbox"


# --- consent ---------------------------------------------------------------------------------
def test_an_agent_records_an_opt_out_with_the_reason(client):
    customer = CustomerFactory()
    user = agent("messaging.view_consent", "messaging.add_consent")
    client.force_login(user)

    response = client.post(
        reverse("admin:messaging_consent_add"),
        {
            "customer": customer.pk,
            "channel": "sms",
            "status": "opted_out",
            "marketing": "",
            "reason": "Asked by phone",
        },
    )

    consent = Consent.objects.get(customer=customer, channel="sms")
    assert response.status_code == 302
    assert (consent.status, consent.source, consent.recorded_by) == ("opted_out", "agent", user)
    event = ConsentEvent.objects.get(customer=customer, channel="sms")
    assert (event.status, event.source, event.recorded_by) == ("opted_out", "agent", user)
    assert event.evidence == {"reason": "Asked by phone"}


def test_recording_consent_needs_a_reason(client):
    customer = CustomerFactory()
    client.force_login(agent("messaging.view_consent", "messaging.add_consent"))

    response = client.post(
        reverse("admin:messaging_consent_add"),
        {"customer": customer.pk, "channel": "sms", "status": "opted_in", "marketing": "", "reason": ""},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["reason"]
    assert not Consent.objects.filter(customer=customer).exists()


def test_every_agent_group_may_record_consent():
    for group in (CONFIRMATION_AGENT, OPS_AGENT, "Store admin"):
        assert UserFactory(groups=[group]).has_perm("messaging.add_consent")


def test_recording_consent_needs_the_permission(client):
    customer = CustomerFactory()
    client.force_login(grant(UserFactory(), "messaging.view_consent"))  # staff, in no group

    response = client.post(
        reverse("admin:messaging_consent_add"),
        {"customer": customer.pk, "channel": "sms", "status": "opted_out", "reason": "Asked by phone"},
    )

    assert response.status_code == 403
    assert not Consent.objects.filter(customer=customer).exists()


def test_the_consent_page_shows_its_history_and_cannot_be_edited(client):
    customer = CustomerFactory()
    consent_record(customer, "whatsapp", "opted_in", source=Consent.Source.CHECKOUT)
    consent = consent_record(customer, "whatsapp", "opted_out", source=Consent.Source.CUSTOMER_REPLY)
    client.force_login(agent("messaging.view_consent"))

    response = client.get(reverse("admin:messaging_consent_change", args=[consent.pk]))
    edit = client.post(reverse("admin:messaging_consent_change", args=[consent.pk]), {"status": "opted_in"})

    page = response.content.decode()
    assert "Checkout" in page and "Customer reply" in page
    assert edit.status_code == 403
    assert Consent.objects.get(pk=consent.pk).status == "opted_out"


# --- notifications and webhooks --------------------------------------------------------------
def test_the_notification_page_lists_its_messages_channel_by_channel(client, fallen_back_order):
    notification = fallen_back_order.notifications.get()
    client.force_login(UserFactory(is_superuser=True))

    response = client.get(reverse("admin:messaging_notification_change", args=[notification.pk]))

    [inline] = response.context["inline_admin_formsets"]
    assert [form.instance.channel for form in inline.formset.forms] == ["whatsapp", "sms"]


def test_provider_webhooks_are_listed_by_flag_and_cannot_be_changed(client):
    flagged = ProviderWebhook.objects.create(
        provider="twilio",
        kind="status",
        dedup_key="a",
        body="{}",
        flagged=True,
        flag_reason="unknown message id",
    )
    ProviderWebhook.objects.create(provider="twilio", kind="status", dedup_key="b", body="{}")
    client.force_login(UserFactory(is_superuser=True))

    listing = client.get(reverse("admin:messaging_providerwebhook_changelist"), {"flagged__exact": "1"})
    edit = client.post(reverse("admin:messaging_providerwebhook_change", args=[flagged.pk]), {"flagged": ""})

    assert [row.pk for row in listing.context["cl"].result_list] == [flagged.pk]
    assert edit.status_code == 403


@pytest.mark.parametrize(
    "model",
    [
        "message",
        "notification",
        "messagetemplate",
        "messagingsettings",
        "channelprovider",
        "consent",
        "providerwebhook",
    ],
)
def test_every_messaging_list_and_its_first_row_open(client, fallen_back_order, model):
    consent_record(fallen_back_order.customer, "sms", "opted_in", source=Consent.Source.CHECKOUT)
    ProviderWebhook.objects.create(provider="scripted", kind="status", dedup_key="k", body="{}")
    client.force_login(UserFactory(is_superuser=True))

    listing = client.get(reverse(f"admin:messaging_{model}_changelist"))
    first = listing.context["cl"].result_list[0]
    page = client.get(reverse(f"admin:messaging_{model}_change", args=[first.pk]))

    assert (listing.status_code, page.status_code) == (200, 200)


def test_the_consent_record_form_opens_with_the_customer_search(client):
    customer = CustomerFactory(name="Amina Benali")
    client.force_login(agent("messaging.view_consent", "messaging.add_consent"))

    response = client.get(reverse("admin:messaging_consent_add"), {"customer": customer.pk, "channel": "sms"})

    page = response.content.decode()
    assert response.status_code == 200
    assert "admin-autocomplete" in page
    assert f'<option value="{customer.pk}" selected>{customer.name}</option>' in page
