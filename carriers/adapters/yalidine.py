"""Yalidine (Algeria): parcels, labels, tracking histories and signed webhooks over API v1.

Auth: headers ``X-API-ID`` and ``X-API-TOKEN`` on every call (credentials ``<PREFIX>_API_ID``,
``<PREFIX>_API_TOKEN``). Base URL ``https://api.yalidine.app/v1/``. JSON in and out.

Endpoints used:
- ``POST /v1/parcels/`` with a JSON **array** (one parcel per call here); the answer is keyed by our
  ``order_id`` (= ``ParcelRequest.reference``): ``{"<order_id>": {"success", "tracking", "label",
  "import_id", "message"}}``. A request with an error creates nothing (all or nothing);
- ``GET /v1/parcels/?order_id=<reference>`` to find a create that timed out;
- ``DELETE /v1/parcels/<tracking>`` (only while "En préparation"): ``[{"tracking", "deleted"}]``;
- ``GET /v1/parcels/?tracking=a,b&fields=tracking,label`` then the public ``label`` URL;
- ``GET /v1/histories/?tracking=a,b,c`` (every status with ``reason`` and place), paginated;
- ``GET /v1/communes/`` for the cities (paginated, ``page_size`` ≤ 1,000).

Cities: a commune's ``carrier_city_id`` is ``"<wilaya name>|<commune name>"``, the two names the
create call wants (``to_wilaya_name``, ``to_commune_name``); ``options["to_wilaya_name"]`` and
``options["to_commune_name"]`` override it. The sender's wilaya comes from
``options["from_wilaya_name"]`` or ``pickup_address["wilaya"]``; ``options["stopdesk_id"]`` sends
the parcel to a stop desk.

Statuses: Yalidine reports a French status and, for failed attempts and holds, a ``reason``. The
adapter reports ``raw_code = "<status>: <reason>"`` when a reason is given (``"Tentative échouée:
Client ne répond pas"``) and the status alone otherwise, so the account's table can tell a refusal
from an absent customer; the table ships both the bare statuses and those combinations.

Rate limits: 5/s, 50/min, 1,000/h, 10,000/day; every answer carries ``x-second-quota-left``,
``x-minute-quota-left``, ``x-hour-quota-left``, ``x-day-quota-left``; beyond, 429 (with
``Retry-After`` per #67460118813; else the emptied window's length is used). Overruns lengthen
bans: callers must honour ``retry_after``.

VERIFIED (Y: Yalidine's API doc as copied in sraidytech/liberta_Management ``API_DOCS/Guepex.md``):
auth, base URL, the endpoints and shapes above, the all-or-nothing create, quotas and headers, the
29 ``last_status`` values (plus "Alerte résolue" in histories) and the failure and hold reasons.

UNVERIFIED:
- the webhook contract (reference §3: "not from the vendor"; #58914272972, #69212156264,
  #53353055651): ``X-YALIDINE-SIGNATURE`` = hex HMAC-SHA256 of the raw body with the webhook secret;
  body ``{"type", "events": [{"event_id", "occurred_at", "data": {"tracking", "status",
  "reason"}}]}``; the subscribe check ``GET ?subscribe=…&crc_token=X`` answered with X
  (``webhook_challenge``);
- the error body (``{"error": {"code", "message"}}`` is assumed; any readable ``message`` is used)
  and which failed-create messages mean a bad place (read: the message names the wilaya or commune);
- statuses only a third-party doc lists (#67460118813): En passation, En transit, Prêt pour livreur,
  Annulé, Retour non retiré, Colis abandonné; the reason "Adresse non livrable";
- which statuses carry which reasons (assumed: the failure reasons with "Tentative échouée" and
  "Echèc livraison", the hold reasons with "Bloqué"); the meaning of "En attente" and "En alerte";
- that the ``label`` URL serves a PDF (it is ``bordereau.php``); one label per tracking number;
- times (``date_status``, ``occurred_at``) are read as Algiers local time;
- ``parcel_payment_updated`` (COD money) is not a tracking status: ``parse_webhook`` skips it.
"""

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
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

YALIDINE_API = "https://api.yalidine.app/v1"
SIGNATURE_HEADER = "X-YALIDINE-SIGNATURE"
ALGIERS = ZoneInfo("Africa/Algiers")
CITY_SEPARATOR = "|"
PAGE_SIZE = 1000
QUOTA_WINDOWS = (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0))

# The statuses (Y, ``last_status`` and histories ``status``) → Livra's axes.
STATUS_MAP: dict[str, tuple[State, Reason]] = {
    "Pas encore expédié": (State.INFO_RECEIVED, Reason.NONE),
    "A vérifier": (State.ON_HOLD, Reason.OTHER),
    "En préparation": (State.INFO_RECEIVED, Reason.NONE),
    "Pas encore ramassé": (State.INFO_RECEIVED, Reason.NONE),
    "Prêt à expédier": (State.INFO_RECEIVED, Reason.NONE),
    "Ramassé": (State.PICKED_UP, Reason.NONE),
    "Bloqué": (State.ON_HOLD, Reason.OTHER),
    "Débloqué": (State.IN_TRANSIT, Reason.NONE),
    "Transfert": (State.IN_TRANSIT, Reason.NONE),
    "Expédié": (State.IN_TRANSIT, Reason.NONE),
    "Centre": (State.IN_TRANSIT, Reason.NONE),
    "En localisation": (State.IN_TRANSIT, Reason.NONE),
    "Vers Wilaya": (State.IN_TRANSIT, Reason.NONE),
    "Reçu à Wilaya": (State.IN_TRANSIT, Reason.NONE),
    "En attente du client": (State.AVAILABLE_FOR_PICKUP, Reason.NONE),  # at the stop desk
    "Sorti en livraison": (State.OUT_FOR_DELIVERY, Reason.NONE),
    "En attente": (State.ON_HOLD, Reason.NONE),  # UNVERIFIED meaning (waiting for a new attempt?)
    "En alerte": (State.ON_HOLD, Reason.OTHER),
    "Alerte résolue": (State.IN_TRANSIT, Reason.NONE),
    "Tentative échouée": (State.DELIVERY_FAILED, Reason.NONE),  # an attempt; more may follow
    "Livré": (State.DELIVERED, Reason.NONE),
    "Echèc livraison": (State.DELIVERY_FAILED, Reason.NONE),  # final: the return follows
    "Retour vers centre": (State.RETURNING, Reason.NONE),
    "Retourné au centre": (State.RETURNING, Reason.NONE),
    "Retour transfert": (State.RETURNING, Reason.NONE),
    "Retour groupé": (State.RETURNING, Reason.NONE),
    "Retour à retirer": (State.RETURNING, Reason.NONE),  # the seller collects it at a desk
    "Retour vers vendeur": (State.RETURNING, Reason.NONE),
    "Retourné au vendeur": (State.RETURNED, Reason.NONE),
    "Echange échoué": (State.DELIVERY_FAILED, Reason.OTHER),
    # Only in a third-party doc (#67460118813): UNVERIFIED.
    "En passation": (State.PICKED_UP, Reason.NONE),
    "En transit": (State.IN_TRANSIT, Reason.NONE),
    "Prêt pour livreur": (State.IN_TRANSIT, Reason.NONE),
    "Annulé": (State.CANCELLED, Reason.NONE),
    "Retour non retiré": (State.RETURNING, Reason.NONE),
    "Colis abandonné": (State.ON_HOLD, Reason.OTHER),
}

# Reasons of a failed delivery (Y) → Livra's reason (reference §1's table; nearest where Livra has
# no own word: absent → unreachable, wrong number → unreachable, duplicate/did not order →
# customer_cancelled, wrong or missing item → other, cannot pay → other, no-show → unreachable).
FAILURE_REASONS: dict[str, Reason] = {
    "Téléphone injoignable": Reason.UNREACHABLE,
    "Client ne répond pas": Reason.UNREACHABLE,
    "Faux numéro": Reason.UNREACHABLE,
    "Client absent (reporté)": Reason.POSTPONED,
    "Client absent (échoué)": Reason.UNREACHABLE,
    "Annulé par le client": Reason.CUSTOMER_CANCELLED,
    "Commande double": Reason.CUSTOMER_CANCELLED,
    "Le client n'a pas commandé": Reason.CUSTOMER_CANCELLED,
    "Produit erroné": Reason.OTHER,
    "Produit manquant": Reason.OTHER,
    "Produit cassé ou défectueux": Reason.DAMAGED,
    "Client incapable de payer": Reason.OTHER,
    "Wilaya erronée": Reason.WRONG_ADDRESS,
    "Commune erronée": Reason.WRONG_ADDRESS,
    "Client no-show": Reason.UNREACHABLE,
    "Adresse non livrable": Reason.WRONG_ADDRESS,  # UNVERIFIED (#67460118813 only)
}
# Reasons of a parcel hold (Y).
HOLD_REASONS: dict[str, Reason] = {
    "Document manquant": Reason.OTHER,
    "Produit interdit": Reason.OTHER,
    "Produit dangereux": Reason.OTHER,
    "Fausse déclaration": Reason.OTHER,
}
FAILURE_STATUSES = ("Tentative échouée", "Echèc livraison")  # UNVERIFIED: which statuses carry reasons
HOLD_STATUSES = ("Bloqué",)
# A webhook event that is not a status, reported as one (the parcel was deleted before pickup).
DELETED_EVENT = "parcel_deleted"


def raw_status(status: str, reason: str | None) -> str:
    """The raw code the adapter reports: the status, with its reason when Yalidine gives one."""
    status, reason = (status or "").strip(), (reason or "").strip()
    return f"{status}: {reason}" if reason else status


def _status_table() -> dict[str, tuple[State, Reason]]:
    table = {fold(status): value for status, value in STATUS_MAP.items()}
    for statuses, reasons in ((FAILURE_STATUSES, FAILURE_REASONS), (HOLD_STATUSES, HOLD_REASONS)):
        for status in statuses:
            for reason_text, reason in reasons.items():
                table[fold(raw_status(status, reason_text))] = (STATUS_MAP[status][0], reason)
    table[fold(DELETED_EVENT)] = (State.CANCELLED, Reason.NONE)
    return table


def _retry_after(headers) -> float | None:
    value = (headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    for window, seconds in QUOTA_WINDOWS:  # the longest emptied window decides
        if (headers.get(f"x-{window}-quota-left") or "").strip() == "0":
            return seconds
    return None


def _local_phone(phone: str) -> str:
    """+213555123456 → 0555123456 (Yalidine wants national numbers starting with 0)."""
    phone = (phone or "").strip()
    return "0" + phone[4:] if phone.startswith("+213") else phone


def _whole(value: Decimal | None) -> int:
    """Yalidine takes whole dinars (and whole kilograms)."""
    if value is None:
        return 0
    return int(Decimal(value).to_integral_value(rounding=ROUND_CEILING))


def _decimal(value) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except InvalidOperation:
        return None


def _moment(value) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=ALGIERS)


def _message(body) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or "")
        return str(error or body.get("message") or "")
    return ""


def _about_place(message: str) -> bool:
    text = fold(message)
    return any(word in text for word in ("wilaya", "commune", "stopdesk", "stop desk", "stop-desk"))


@register
class YalidineAdapter:
    name: ClassVar[str] = "yalidine"
    label: ClassVar[str] = "Yalidine"
    track_batch_size: ClassVar[int] = 50  # tracking numbers per histories call
    requests_per_second: ClassVar[float] = 1000 / 3600  # the hourly quota; 5/s and 50/min are bursts
    supports_webhooks: ClassVar[bool] = True
    # The public tracking page customers are sent to (UNVERIFIED: as the carrier's site shows it).
    tracking_url_template: ClassVar[str] = "https://yalidine.com/suivre-un-colis/?tracking={number}"
    burst_per_second: ClassVar[float] = 5.0  # and 50/min: the hourly pace keeps under both
    credential_names: ClassVar[tuple[str, ...]] = ("API_ID", "API_TOKEN")
    default_status_map: ClassVar[dict[str, tuple[State, Reason]]] = _status_table()

    def __init__(
        self,
        credentials: dict[str, str],
        *,
        base_url: str | None = None,
        webhook_secret: str = "",
        timeout: float = 10.0,
    ):
        self.base_url = (base_url or YALIDINE_API).rstrip("/")
        self._webhook_secret = webhook_secret
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers.update(
            {
                "X-API-ID": credentials["API_ID"],
                "X-API-TOKEN": credentials["API_TOKEN"],
                "Accept": "application/json",
            }
        )
        self.quota_left: dict[str, int] = {}  # the last answer's x-*-quota-left, for callers that pace

    # --- transport -------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, create: bool = False, **kwargs):
        what = path.split("?")[0]
        try:
            response = self._session.request(method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            if request_never_sent(exc) or not create:
                logger.warning("yalidine %s %s: %s", method, what, type(exc).__name__)
                raise CarrierError(ErrorKind.RETRYABLE, "network", type(exc).__name__) from None
            logger.warning("yalidine create: no answer (%s)", type(exc).__name__)
            raise CarrierError(ErrorKind.UNKNOWN, "network", type(exc).__name__) from None
        return self._check(response, what, create=create)

    def _check(self, response: requests.Response, what: str, *, create: bool = False):
        status = response.status_code
        logger.info("yalidine %s → %s", what, status)
        for window, _seconds in QUOTA_WINDOWS:
            left = (response.headers.get(f"x-{window}-quota-left") or "").strip()
            if left.lstrip("-").isdigit():
                self.quota_left[window] = int(left)
        try:
            body = response.json()
        except ValueError:
            body = None
        if status == 429:
            raise CarrierError(ErrorKind.RETRYABLE, "429", "quota exceeded", _retry_after(response.headers))
        if status >= 500:
            raise CarrierError(
                ErrorKind.RETRYABLE, str(status), "server error", _retry_after(response.headers)
            )
        if status >= 400:
            message = _message(body)
            kind = (
                ErrorKind.INVALID_ADDRESS
                if status in (400, 422) and _about_place(message)
                else ErrorKind.PERMANENT
            )
            raise CarrierError(kind, str(status), message)
        if body is None:
            kind = ErrorKind.UNKNOWN if create else ErrorKind.RETRYABLE
            raise CarrierError(kind, str(status), "unreadable answer")
        return body

    def _pages(self, path: str, params: dict) -> list[dict]:
        """Every row of a paginated list (``has_more``), asking page after page."""
        rows, page = [], 1
        while True:
            body = self._call("GET", path, params={**params, "page": page, "page_size": PAGE_SIZE})
            if not isinstance(body, dict):
                raise CarrierError(ErrorKind.RETRYABLE, "list", "unreadable list")
            rows.extend(row for row in body.get("data") or [] if isinstance(row, dict))
            if not body.get("has_more") or not body.get("data"):
                return rows
            page += 1

    # --- parcels ---------------------------------------------------------------------------------
    def _parcel_payload(self, parcel: ParcelRequest) -> dict:
        options = parcel.options
        wilaya, _, commune = str(parcel.city).partition(CITY_SEPARATOR)
        to_wilaya = options.get("to_wilaya_name") or (wilaya if commune else "")
        to_commune = options.get("to_commune_name") or commune or (wilaya if not commune else "")
        if not to_wilaya or not to_commune:
            raise CarrierError(
                ErrorKind.INVALID_ADDRESS, "city", "the wilaya and the commune are both needed"
            )
        from_wilaya = options.get("from_wilaya_name") or parcel.pickup_address.get("wilaya")
        if not from_wilaya:
            raise CarrierError(ErrorKind.PERMANENT, "from_wilaya_name", "the sender's wilaya is not set")
        first, _, family = parcel.recipient_name.strip().partition(" ")
        stopdesk = options.get("stopdesk_id")
        exchange = options.get("product_to_collect")
        return {
            "order_id": parcel.reference,
            "from_wilaya_name": from_wilaya,
            "firstname": first,
            "familyname": family.strip() or first,
            "contact_phone": _local_phone(parcel.phone),
            "address": parcel.address,
            "to_commune_name": to_commune,
            "to_wilaya_name": to_wilaya,
            "product_list": parcel.description or f"{parcel.quantity} article(s)",
            "price": _whole(parcel.cod_amount),
            "do_insurance": bool(options.get("do_insurance", False)),
            "declared_value": _whole(
                parcel.declared_value if parcel.declared_value is not None else parcel.cod_amount
            ),
            "length": int(options.get("length", 0)),
            "width": int(options.get("width", 0)),
            "height": int(options.get("height", 0)),
            "weight": _whole(parcel.weight_kg),
            "freeshipping": bool(options.get("freeshipping", False)),
            "is_stopdesk": bool(stopdesk),
            "stopdesk_id": stopdesk or None,
            "has_exchange": bool(exchange),
            "product_to_collect": exchange or None,
        }

    def create_parcel(self, parcel: ParcelRequest) -> ParcelCreated:
        payload = self._parcel_payload(parcel)
        body = self._call("POST", "/parcels/", create=True, json=[payload])
        result = body.get(parcel.reference) if isinstance(body, dict) else None
        if not isinstance(result, dict):
            raise CarrierError(ErrorKind.UNKNOWN, "no_result", "no answer for our order_id")
        if not result.get("success") or not result.get("tracking"):  # an error inside HTTP 200
            message = str(result.get("message") or "")
            # The recipient's wilaya or commune is an address problem; the sender's is our settings'.
            place = _about_place(message) and "from_wilaya" not in message
            kind = ErrorKind.INVALID_ADDRESS if place else ErrorKind.PERMANENT
            raise CarrierError(kind, "rejected", message)
        logger.info("yalidine created %s for %s", result["tracking"], parcel.reference)
        return ParcelCreated(
            tracking_number=str(result["tracking"]),
            label_url=str(result.get("label") or ""),
            carrier_reference=str(result.get("import_id") or ""),
            raw={key: result.get(key) for key in ("order_id", "tracking", "import_id", "success")},
        )

    def find_parcel(self, reference: str) -> ParcelCreated | None:
        body = self._call("GET", "/parcels/", params={"order_id": reference})
        for row in (body.get("data") or []) if isinstance(body, dict) else []:
            if isinstance(row, dict) and row.get("tracking") and str(row.get("order_id")) == reference:
                return ParcelCreated(
                    tracking_number=str(row["tracking"]),
                    label_url=str(row.get("label") or ""),
                    fee=_decimal(row.get("delivery_fee")),
                    carrier_reference=str(row.get("import_id") or ""),
                    raw={key: row.get(key) for key in ("order_id", "tracking", "import_id", "last_status")},
                )
        return None

    def cancel_parcel(self, tracking_number: str) -> None:
        body = self._call("DELETE", f"/parcels/{tracking_number}")
        rows = body if isinstance(body, list) else [body]
        if not any(isinstance(row, dict) and row.get("deleted") for row in rows):
            # Only a parcel still "En préparation" can be deleted (or it is unknown, or gone).
            raise CarrierError(ErrorKind.PERMANENT, "not_deleted", "Yalidine did not delete the parcel")

    def label_pdf(self, tracking_numbers: list[str]) -> bytes:
        if len(tracking_numbers) != 1:
            raise CarrierError(ErrorKind.PERMANENT, "one_label", "Yalidine gives one label per parcel")
        [tracking] = tracking_numbers
        body = self._call("GET", "/parcels/", params={"tracking": tracking, "fields": "tracking,label"})
        rows = (body.get("data") or []) if isinstance(body, dict) else []
        url = next(
            (row.get("label") for row in rows if isinstance(row, dict) and row.get("tracking") == tracking),
            "",
        )
        if not url:
            raise CarrierError(ErrorKind.PERMANENT, "no_label", "no label for that parcel")
        try:
            # The label URL is public (a token in it): the API credentials are not sent there.
            response = requests.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise CarrierError(ErrorKind.RETRYABLE, "network", type(exc).__name__) from None
        if response.status_code >= 400 or not response.content.startswith(b"%PDF"):
            raise CarrierError(ErrorKind.RETRYABLE, str(response.status_code), "the label is not a PDF")
        return response.content

    # --- tracking --------------------------------------------------------------------------------
    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        if not tracking_numbers:
            return []
        rows = self._pages("/histories/", {"tracking": ",".join(tracking_numbers)})
        updates = [
            TrackingUpdate(
                tracking_number=str(row["tracking"]),
                raw_code=raw_status(row.get("status") or "", row.get("reason")),
                raw_text=str(row.get("reason") or ""),
                occurred_at=_moment(row.get("date_status")),
                location=", ".join(
                    str(row[key]) for key in ("center_name", "commune_name", "wilaya_name") if row.get(key)
                ),
                raw={
                    key: row.get(key) for key in ("date_status", "status", "reason", "center_id", "wilaya_id")
                },
            )
            for row in rows
            if row.get("tracking") and row.get("status")
        ]
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(updates, key=lambda update: (update.tracking_number, update.occurred_at or far))

    # --- webhooks --------------------------------------------------------------------------------
    @staticmethod
    def webhook_challenge(query) -> str | None:
        """The ``crc_token`` to echo when Yalidine checks the endpoint (``GET ?subscribe&crc_token=``),
        else None. ``query``: a dict or a Django QueryDict."""
        if "subscribe" not in query:
            return None
        token = query.get("crc_token")
        return str(token) if token else None

    def verify_webhook(self, headers: dict, body: bytes) -> bool:
        if not self._webhook_secret:
            return False
        given = header_value(headers, SIGNATURE_HEADER).strip().lower()
        expected = hmac.new(self._webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given.encode(), expected.encode())

    def parse_webhook(self, headers: dict, body: bytes) -> list[TrackingUpdate]:
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            raise CarrierError(ErrorKind.PERMANENT, "payload", "not JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
            raise CarrierError(ErrorKind.PERMANENT, "payload", "no events")
        kind = payload.get("type")
        if kind not in ("parcel_status_updated", DELETED_EVENT):
            return []  # created, edited, payment: not a tracking status
        updates = []
        for event in payload["events"]:
            data = event.get("data") if isinstance(event, dict) else None
            if not isinstance(data, dict) or not data.get("tracking"):
                continue
            if kind == DELETED_EVENT:
                raw_code, reason = DELETED_EVENT, ""
            elif data.get("status"):
                raw_code, reason = (
                    raw_status(data["status"], data.get("reason")),
                    str(data.get("reason") or ""),
                )
            else:
                continue
            updates.append(
                TrackingUpdate(
                    tracking_number=str(data["tracking"]),
                    raw_code=raw_code,
                    raw_text=reason,
                    occurred_at=_moment(event.get("occurred_at")),
                    event_id=str(event.get("event_id") or ""),
                    raw={"type": kind, "occurred_at": event.get("occurred_at"), **data},
                )
            )
        return updates

    # --- reference data --------------------------------------------------------------------------
    def cities(self) -> list[City]:
        return [
            City(
                carrier_city_id=f"{row['wilaya_name']}{CITY_SEPARATOR}{row['name']}",
                name=str(row["name"]),
                zone=str(row["wilaya_name"]),
            )
            for row in self._pages("/communes/", {})
            if row.get("name") and row.get("wilaya_name") and row.get("is_deliverable", 1)
        ]
