"""Sendit (Morocco): parcels, labels, tracking and status webhooks over Sendit's REST API v1.

Auth: ``POST /login {"public_key", "secret_key"}`` answers ``{"data": {"token"}}``; every other call
sends ``Authorization: Bearer <token>``. The token is kept for the adapter's life and fetched again
once when a call answers 401. Credentials: ``<PREFIX>_PUBLIC_KEY``, ``<PREFIX>_SECRET_KEY``.
Base URL ``https://app.sendit.ma/api/v1``.

Endpoints used:
- ``POST /deliveries`` (JSON: district_id, name, amount, address, phone, comment, reference,
  allow_open, allow_try, products…) → ``data.code``, ``data.fee``, ``data.labelUrl``;
- ``GET /deliveries?querystring=<reference>`` to find a create that timed out (see UNVERIFIED);
- ``GET /deliveries/{code}`` (``status``, ``last_action_at``, ``status_return``, ``audits[]``) to track,
  one call per parcel (the API has no batch read by code);
- ``DELETE /deliveries/{code}`` to cancel; ``POST /deliveries/getlabels {"codesToPrint": "A,B",
  "printFormat": 1}`` → ``data.fileUrl``, a PDF fetched without the token;
- ``GET /districts?page=N`` for the cities (``id``, ``name``, ``ville``).

VERIFIED (vendor doc as copied in the reference's #55718970566): login, base URL, the endpoints
above except ``/districts``, response shapes, error codes 200/250/251/252/401/403/404/422/500,
1,000 requests per hour, the 14 statuses (#70801074948 lists them with French labels).

UNVERIFIED (reference §3 and third-party code, not vendor docs):
- the webhook: its contract is in a separate vendor PDF we do not have. Signature
  ``X-Sendit-Signature`` = hex HMAC-SHA256 of the raw body (#70410437064; an optional ``sha256=``
  prefix is accepted), keyed with the secret set when the webhook is created (``webhook_secret``).
  Payload ``{"event": "delivery.status.update", "code", "oldStatus", "newStatus", "lastActionAt",
  "message", "deliverBy", "counterUnreachable"}`` as third-party code reads it (file id 60313359953);
  the WooCommerce plugin's ``{"reference", "status"}`` shape is read too;
- ``/districts?querystring=&page=`` (third-party code only; Laravel pagination assumed);
- whether ``querystring`` also matches our ``reference`` (the doc lists code, name, phone, address):
  ``find_parcel`` keeps only exact ``reference`` matches, so a miss returns ``None``, never a guess;
- the 429 answer: Laravel's throttle headers (``Retry-After``, ``X-RateLimit-*``) are assumed;
- whether codes 250–252 come as the HTTP status or inside a 200 body: both are read as errors, as is
  any ``"success": false`` body;
- timestamps (``last_action_at``) are read as Morocco local time; audits' ``created_at`` is a
  French wording and is not parsed;
- the meaning of NEW_DESTINATION ("À changer"), DISTRIBUTED ("Distribué") and CANCELED ("Annulé")
  (see ``STATUS_MAP``); the return leg (``status_return``: only RETOUR_PENDING is documented) is
  kept in ``raw`` and not mapped;
- the 5,000 DH COD cap (#56755292665) is not enforced here: Sendit's own 422 says so if it applies.
"""

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import ClassVar
from zoneinfo import ZoneInfo

import requests

from carriers.adapters import (
    CarrierError,
    City,
    ErrorKind,
    ParcelCreated,
    ParcelRequest,
    Reason,
    State,
    TrackingUpdate,
    fold,
    register,
)
from carriers.adapters.http_answers import header_value, request_never_sent

logger = logging.getLogger(__name__)

SENDIT_API = "https://app.sendit.ma/api/v1"
SIGNATURE_HEADER = "X-Sendit-Signature"
STATUS_EVENT = "delivery.status.update"
MOROCCO = ZoneInfo("Africa/Casablanca")

# Sendit's raw statuses (the vendor's codes; French labels from #70801074948) → Livra's axes.
STATUS_MAP: dict[str, tuple[State, Reason]] = {
    "PENDING": (State.INFO_RECEIVED, Reason.NONE),  # En attente
    "TO_PREPARE": (State.INFO_RECEIVED, Reason.NONE),  # À préparer (fulfilment from stock)
    # À changer: the destination must change before it can go on. UNVERIFIED reading.
    "NEW_DESTINATION": (State.ON_HOLD, Reason.WRONG_ADDRESS),
    "TO_PICKUP": (State.INFO_RECEIVED, Reason.NONE),  # Ramassage en cours (not collected yet)
    "PICKEDUP": (State.PICKED_UP, Reason.NONE),  # Ramassé
    "WAREHOUSE": (State.IN_TRANSIT, Reason.NONE),  # Entrepôt
    "TRANSIT": (State.IN_TRANSIT, Reason.NONE),  # En transit
    # Distribué: handed to the destination's courier, before the delivery run. UNVERIFIED reading.
    "DISTRIBUTED": (State.IN_TRANSIT, Reason.NONE),
    "UNREACHABLE": (State.DELIVERY_FAILED, Reason.UNREACHABLE),  # Injoignable (counter_unreachable)
    "POSTPONED": (State.DELIVERY_FAILED, Reason.POSTPONED),  # Reporté (+ deliver_by)
    "DELIVERING": (State.OUT_FOR_DELIVERY, Reason.NONE),  # En cours de livraison
    "DELIVERED": (State.DELIVERED, Reason.NONE),  # Livré
    # Annulé: set by Sendit's side after pickup (a merchant cancel is a DELETE). UNVERIFIED reading.
    "CANCELED": (State.DELIVERY_FAILED, Reason.CUSTOMER_CANCELLED),
    "REJECTED": (State.DELIVERY_FAILED, Reason.REFUSED),  # Refusé (reference §1)
}

# 422 field errors that mean "not a place Sendit serves" rather than a malformed request.
_ADDRESS_FIELDS = {"district_id", "pickup_district_id", "address", "ville", "city"}
_PRODUCT_CODES = {250, 251, 252}  # products field wrong / unknown / not enough stock


def _retry_after(headers) -> float | None:
    """Seconds to wait, from ``Retry-After`` (seconds or HTTP date) or Laravel's ``X-RateLimit-Reset``."""
    value = (headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    reset = (headers.get("X-RateLimit-Reset") or "").strip()
    if reset.isdigit():
        return max(0.0, float(reset) - datetime.now(UTC).timestamp())
    return None


def _local_phone(phone: str) -> str:
    """+212612345678 → 0612345678 (Sendit's examples are national numbers)."""
    phone = (phone or "").strip()
    return "0" + phone[4:] if phone.startswith("+212") else phone


def _amount(value: Decimal | None):
    if value is None:
        return 0
    return int(value) if value == value.to_integral_value() else float(value)


def _decimal(value) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except InvalidOperation:
        return None


def _moment(value) -> datetime | None:
    """``YYYY-MM-DD HH:MM:SS`` (Morocco time) or ISO 8601; None when unreadable."""
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=MOROCCO)


@register
class SenditAdapter:
    name: ClassVar[str] = "sendit"
    label: ClassVar[str] = "Sendit"
    track_batch_size: ClassVar[int] = 10  # one GET per parcel: 10 calls per batch
    requests_per_second: ClassVar[float] = 1000 / 3600  # 1,000 requests per hour
    supports_webhooks: ClassVar[bool] = True
    track_requests_per_batch: ClassVar[int] = 10  # one GET per parcel
    credential_names: ClassVar[tuple[str, ...]] = ("PUBLIC_KEY", "SECRET_KEY")
    default_status_map: ClassVar[dict[str, tuple[State, Reason]]] = {
        fold(raw): value for raw, value in STATUS_MAP.items()
    }

    def __init__(
        self,
        credentials: dict[str, str],
        *,
        base_url: str | None = None,
        webhook_secret: str = "",
        timeout: float = 10.0,
    ):
        self._public_key = credentials["PUBLIC_KEY"]
        self._secret_key = credentials["SECRET_KEY"]
        self.base_url = (base_url or SENDIT_API).rstrip("/")
        self._webhook_secret = webhook_secret
        self.timeout = timeout
        self._session = requests.Session()
        self._token = ""

    # --- transport -------------------------------------------------------------------------------
    def _send(self, method: str, url: str, *, create: bool = False, **kwargs) -> requests.Response:
        try:
            return self._session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            if request_never_sent(exc) or not create:
                logger.warning("sendit %s %s: %s", method, url.rsplit("/", 1)[-1], type(exc).__name__)
                raise CarrierError(ErrorKind.RETRYABLE, "network", type(exc).__name__) from None
            logger.warning("sendit create: no answer (%s)", type(exc).__name__)
            raise CarrierError(ErrorKind.UNKNOWN, "network", type(exc).__name__) from None

    def _login(self) -> None:
        response = self._send(
            "POST",
            f"{self.base_url}/login",
            json={"public_key": self._public_key, "secret_key": self._secret_key},
            headers={"Accept": "application/json"},
        )
        body = self._check(response, "login")
        token = (body.get("data") or {}).get("token") if isinstance(body, dict) else None
        if not token:
            raise CarrierError(ErrorKind.PERMANENT, "login", "no token in Sendit's answer")
        self._token = token

    def _call(self, method: str, path: str, *, create: bool = False, **kwargs) -> dict:
        """An authenticated call; logs in first, and once more if the token was refused."""
        for attempt in (1, 2):
            if not self._token:
                self._login()
            headers = {"Accept": "application/json", "Authorization": f"Bearer {self._token}"}
            response = self._send(method, f"{self.base_url}{path}", create=create, headers=headers, **kwargs)
            if response.status_code == 401 and attempt == 1:
                self._token = ""  # expired or revoked: a 401 was not processed, so a retry is safe
                continue
            return self._check(response, path.split("?")[0], create=create)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check(self, response: requests.Response, what: str, *, create: bool = False) -> dict:
        """The JSON body of a success, or the ``CarrierError`` Sendit's answer stands for."""
        status = response.status_code
        logger.info("sendit %s → %s", what, status)
        try:
            body = response.json()
        except ValueError:
            body = None
        if status == 429:
            raise CarrierError(ErrorKind.RETRYABLE, "429", "rate limited", _retry_after(response.headers))
        if status >= 500:
            raise CarrierError(
                ErrorKind.RETRYABLE, str(status), "server error", _retry_after(response.headers)
            )
        message = ""
        if isinstance(body, dict):
            message = str(body.get("message") or body.get("error") or "")
        code = body.get("code") if isinstance(body, dict) else None
        if status in _PRODUCT_CODES or code in _PRODUCT_CODES:
            raise CarrierError(ErrorKind.PERMANENT, str(code or status), message)
        if status == 422:
            errors = body.get("errors") if isinstance(body, dict) else None
            fields = set(errors) if isinstance(errors, dict) else set()
            kind = ErrorKind.INVALID_ADDRESS if fields & _ADDRESS_FIELDS else ErrorKind.PERMANENT
            raise CarrierError(kind, "422", "; ".join(sorted(fields)) or message)
        if status >= 400:
            raise CarrierError(ErrorKind.PERMANENT, str(status), message)
        if not isinstance(body, dict):
            # A 2xx Livra cannot read: on a create the parcel may exist.
            kind = ErrorKind.UNKNOWN if create else ErrorKind.RETRYABLE
            raise CarrierError(kind, str(status), "unreadable answer")
        if body.get("success") is False:  # an error inside HTTP 200
            raise CarrierError(ErrorKind.PERMANENT, str(code or status), message)
        return body

    # --- parcels ---------------------------------------------------------------------------------
    def create_parcel(self, parcel: ParcelRequest) -> ParcelCreated:
        options = parcel.options
        payload = {
            "district_id": int(parcel.city) if str(parcel.city).isdigit() else parcel.city,
            "name": parcel.recipient_name,
            "amount": _amount(parcel.cod_amount),
            "address": parcel.address,
            "phone": _local_phone(parcel.phone),
            "comment": options.get("comment", parcel.description),
            "reference": parcel.reference,
            "allow_open": int(bool(options.get("allow_open", True))),
            "allow_try": int(bool(options.get("allow_try", False))),
            "products_from_stock": int(bool(options.get("products_from_stock", False))),
            "products": options.get("products", ""),
            "option_exchange": int(bool(options.get("option_exchange", False))),
        }
        pickup = options.get("pickup_district_id") or parcel.pickup_address.get("district_id")
        if pickup:
            payload["pickup_district_id"] = pickup
        for name in ("packaging_id", "delivery_exchange_id"):
            if options.get(name):
                payload[name] = options[name]
        body = self._call("POST", "/deliveries", create=True, json=payload)
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("code"):
            raise CarrierError(ErrorKind.UNKNOWN, "no_code", "Sendit answered without a parcel code")
        logger.info("sendit created %s for %s", data["code"], parcel.reference)
        return self._created(data)

    @staticmethod
    def _created(data: dict) -> ParcelCreated:
        return ParcelCreated(
            tracking_number=str(data["code"]),
            label_url=str(data.get("labelUrl") or ""),
            fee=_decimal(data.get("fee")),
            carrier_reference=str(data.get("reference") or ""),
            raw={key: data.get(key) for key in ("code", "status", "fee", "reference", "status_return")},
        )

    def find_parcel(self, reference: str) -> ParcelCreated | None:
        body = self._call("GET", "/deliveries", params={"querystring": reference})
        for data in body.get("data") or []:
            if isinstance(data, dict) and data.get("code") and str(data.get("reference")) == reference:
                return self._created(data)
        return None

    def cancel_parcel(self, tracking_number: str) -> None:
        self._call("DELETE", f"/deliveries/{tracking_number}")

    def label_pdf(self, tracking_numbers: list[str]) -> bytes:
        body = self._call(
            "POST",
            "/deliveries/getlabels",
            json={"codesToPrint": ",".join(tracking_numbers), "printFormat": 1},
        )
        url = (body.get("data") or {}).get("fileUrl")
        if not url:
            raise CarrierError(ErrorKind.PERMANENT, "no_label", "Sendit printed no label file")
        response = self._send("GET", url)  # a public file: no token sent to it
        if response.status_code >= 400 or not response.content.startswith(b"%PDF"):
            raise CarrierError(ErrorKind.RETRYABLE, str(response.status_code), "the label file is not a PDF")
        return response.content

    # --- tracking --------------------------------------------------------------------------------
    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        updates: list[TrackingUpdate] = []
        for code in tracking_numbers:
            try:
                body = self._call("GET", f"/deliveries/{code}")
            except CarrierError as exc:
                if exc.code == "404":
                    logger.info("sendit track %s: not found", code)
                    continue
                raise
            data = body.get("data")
            if isinstance(data, dict):
                updates.extend(self._updates(code, data))
        return updates

    @staticmethod
    def _updates(code: str, data: dict) -> list[TrackingUpdate]:
        """One update per status the parcel went through: its audits, then its current status."""
        snapshots = [
            audit["data"]
            for audit in data.get("audits") or []
            if isinstance(audit, dict) and audit.get("data")
        ]
        snapshots.append(data)
        updates, seen = [], set()
        for snapshot in snapshots:
            status = snapshot.get("status")
            key = (status, snapshot.get("last_action_at"))
            if not status or key in seen:
                continue
            seen.add(key)
            updates.append(
                TrackingUpdate(
                    tracking_number=code,
                    raw_code=str(status),
                    raw_text=str(snapshot.get("comment") or ""),
                    occurred_at=_moment(snapshot.get("last_action_at")),
                    raw={
                        name: snapshot.get(name)
                        for name in ("status", "status_return", "last_action_at", "comment")
                        if name in snapshot
                    },
                )
            )
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(updates, key=lambda update: update.occurred_at or far)

    # --- webhooks --------------------------------------------------------------------------------
    def verify_webhook(self, headers: dict, body: bytes) -> bool:
        if not self._webhook_secret:
            return False
        given = header_value(headers, SIGNATURE_HEADER).strip().lower().removeprefix("sha256=")
        expected = hmac.new(self._webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given.encode(), expected.encode())

    def parse_webhook(self, headers: dict, body: bytes) -> list[TrackingUpdate]:
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            raise CarrierError(ErrorKind.PERMANENT, "payload", "not JSON") from None
        if not isinstance(payload, dict):
            raise CarrierError(ErrorKind.PERMANENT, "payload", "not a JSON object")
        if payload.get("event") not in (None, STATUS_EVENT):
            return []
        code = payload.get("code") or payload.get("reference")
        status = payload.get("newStatus") or payload.get("status")
        if not code or not status:
            raise CarrierError(ErrorKind.PERMANENT, "payload", "no parcel code or status")
        keep = ("event", "code", "oldStatus", "newStatus", "status", "lastActionAt", "deliverBy")
        raw = {name: payload[name] for name in (*keep, "counterUnreachable") if name in payload}
        return [
            TrackingUpdate(
                tracking_number=str(code),
                raw_code=str(status),
                raw_text=str(payload.get("message") or ""),
                occurred_at=_moment(payload.get("lastActionAt") or payload.get("updated_at")),
                raw=raw,
            )
        ]

    # --- reference data --------------------------------------------------------------------------
    def cities(self) -> list[City]:
        cities, page = [], 1
        while True:
            body = self._call("GET", "/districts", params={"page": page})
            for district in body.get("data") or []:
                if isinstance(district, dict) and district.get("id") is not None:
                    cities.append(
                        City(
                            str(district["id"]),
                            str(district.get("name") or ""),
                            str(district.get("ville") or ""),
                        )
                    )
            last_page = body.get("last_page")
            if not body.get("data") or not isinstance(last_page, int) or page >= last_page:
                return cities
            page += 1
