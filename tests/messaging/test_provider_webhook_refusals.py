"""Provider webhooks and bad input: refusals are JSON ``{"detail": …}``; a signed body is always
kept, and one that cannot be read (nested 5,000 deep included) is flagged, never a server error."""

import pytest
from django.urls import reverse

from messaging.models import ProviderWebhook
from messaging.providers.sandbox import SIGNATURE_HEADER, sandbox_signature
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

SIGNATURE_META = "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_")


@pytest.fixture
def store():
    return StoreFactory(slug="atlas-souk")


@pytest.mark.parametrize("kind", ["provider-inbound", "provider-status"])
def test_a_signed_body_of_5000_nested_brackets_is_kept_and_flagged(client, store, kind):
    body = b"[" * 5000

    response = client.post(
        reverse(f"messaging:{kind}", args=["sandbox", store.slug]),
        body,
        content_type="application/json",
        **{SIGNATURE_META: sandbox_signature(body)},
    )

    assert response.status_code == 200
    webhook = ProviderWebhook.objects.get()
    assert (webhook.flagged, webhook.body) == (True, body.decode())
    assert "nested deeper than 64 levels" in webhook.flag_reason


def test_a_signed_body_with_a_nul_byte_is_kept_and_flagged_not_a_server_error(client, store):
    body = b'{"id": "SBIN-1", "channel": "sms", "from": "\x00"}'

    response = client.post(
        reverse("messaging:provider-inbound", args=["sandbox", store.slug]),
        body,
        content_type="application/json",
        **{SIGNATURE_META: sandbox_signature(body)},
    )

    assert response.status_code == 200
    webhook = ProviderWebhook.objects.get()
    assert (webhook.flagged, webhook.body) == (True, '{"id": "SBIN-1", "channel": "sms", "from": "\ufffd"}')


@pytest.mark.parametrize(
    ("provider", "slug", "status", "detail"),
    [
        ("carrier-pigeon", "atlas-souk", 404, "Unknown provider."),
        ("sandbox", "nobody", 404, "Unknown store."),
        ("twilio", "atlas-souk", 404, "This store does not use this provider."),
        ("sandbox", "atlas-souk", 403, "Bad signature."),
    ],
)
def test_every_refusal_is_json_with_a_detail(client, store, provider, slug, status, detail):
    url = reverse("messaging:provider-inbound", args=[provider, slug])

    response = client.post(url, b"{}", content_type="application/json")

    assert (response.status_code, response["Content-Type"]) == (status, "application/json")
    assert response.json() == {"detail": detail}


def test_a_get_on_a_provider_webhook_is_a_json_405(client, store):
    response = client.get(reverse("messaging:provider-inbound", args=["sandbox", store.slug]))

    assert (response.status_code, response["Allow"]) == (405, "POST")
    assert response.json() == {"detail": 'Method "GET" not allowed.'}
