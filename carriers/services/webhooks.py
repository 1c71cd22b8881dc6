"""Carrier webhooks through the store inbox: kept raw once, answered at once, applied by the drain.

A carrier's push is a ``StoreDelivery`` of platform ``carrier`` (topic ``<carrier>:<account id>``)
in the account's store: the same idempotency, drain, retries with backoff, flags and admin as a
store's webhooks (``orders.services.inbox``), not a second inbox. The drain hands it to
``carrier_delivery_apply``, which parses it with the carrier's adapter and records its events.
Nothing secret is stored: the signature is checked before, and headers or query parameters that
carry the secret (Coliix's URL token, Shiprocket's ``x-api-key``) are left out of the row.
"""

import hashlib
import logging
from urllib.parse import parse_qsl, urlencode

from django.utils import timezone

from carriers.adapters import CarrierError
from carriers.models import CarrierAccount, TrackingEvent
from carriers.services.accounts import carrier_account_adapter, carrier_account_webhook_secret
from carriers.services.polling import shipments_poll_now, shipments_poll_reschedule
from carriers.services.tracking import tracking_updates_record
from orders.models import Order, StoreDelivery
from orders.services.inbox import store_delivery_receive
from orders.services.ingest import IngestOutcome

logger = logging.getLogger(__name__)

CARRIER_PLATFORM = "carrier"
QUERY_STRING = "QUERY_STRING"
# Never kept, whatever the carrier: they authenticate, they do not describe the event.
SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie"}


def carrier_webhook_receive(account: CarrierAccount, headers: dict, body: bytes) -> tuple[int, bool]:
    """Keep a verified push in the inbox (deduplicated by its content) and wake the drain.

    ``headers`` are the request's, with the query string under ``QUERY_STRING`` (Coliix sends its
    fields there). Returns the delivery's id and whether it is new.
    """
    kept = _headers_without_secrets(headers, carrier_account_webhook_secret(account))
    material = kept.get(QUERY_STRING, "").encode() + b"\n" + body
    key = f"{account.pk}:sha256:{hashlib.sha256(material).hexdigest()}"
    return store_delivery_receive(
        account.store,
        CARRIER_PLATFORM,
        topic=f"{account.carrier}:{account.pk}",
        idempotency_key=key,
        headers=kept,
        body=body,
    )


def carrier_delivery_apply(delivery: StoreDelivery) -> IngestOutcome:
    """Apply a carrier's push kept in the inbox (the drain calls this inside its savepoint)."""
    outcome = IngestOutcome()
    carrier, _, account_id = delivery.topic.partition(":")
    account = CarrierAccount.objects.filter(pk=account_id if account_id.isdigit() else None).first()
    if account is None or account.carrier != carrier:
        outcome.flag(f"no {carrier} account {account_id} any more: kept, not applied")
        return outcome
    adapter = carrier_account_adapter(account, for_webhooks=True)
    try:
        updates = adapter.parse_webhook(dict(delivery.headers), bytes(delivery.body))
    except CarrierError as error:
        outcome.flag(f"unreadable {carrier} webhook: {error.text or error.code}")
        return outcome
    if not updates:
        outcome.notes.append("no tracking news in this delivery")
        return outcome
    result = tracking_updates_record(account, updates, TrackingEvent.Source.WEBHOOK)
    now = timezone.now()
    shipment_ids = {event.shipment_id for event in result.recorded}
    if getattr(adapter, "webhook_is_trigger", False):
        # Weak proof (a token, no signature): the news is kept, and the carrier is asked again.
        shipments_poll_now(account, {update.tracking_number for update in updates}, now)
    elif shipment_ids:
        shipments_poll_reschedule(account.carrier, shipment_ids, now)
    outcome.applied = [f"{event.raw_code} → {event.state or 'unmapped'}" for event in result.recorded]
    if result.duplicates:
        outcome.notes.append(f"{result.duplicates} report(s) already kept")
    unmapped = sorted({event.raw_code for event in result.recorded if not event.mapped})
    if unmapped:
        outcome.notes.append(f"unmapped carrier statuses kept: {', '.join(unmapped)}")
    if result.unknown_parcels:
        numbers = ", ".join(sorted(set(result.unknown_parcels))[:10])
        outcome.flag(f"no shipment of this account has tracking number {numbers}: kept, not applied")
    order_ids = {event.shipment.order_id for event in result.recorded}
    if len(order_ids) == 1:
        outcome.order = Order.objects.get(pk=order_ids.pop())
    return outcome


def _headers_without_secrets(headers: dict, secret: str) -> dict:
    kept = {}
    for name, value in headers.items():
        if name == QUERY_STRING:
            pairs = parse_qsl(str(value), keep_blank_values=True)
            value = urlencode([(key, item) for key, item in pairs if not (secret and item == secret)])
        elif name.lower() in SECRET_HEADERS or (secret and secret in str(value)):
            continue
        kept[name] = value
    return kept
