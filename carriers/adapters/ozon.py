"""Ozon Express (Morocco): parcels, delivery-note labels and bulk tracking. No webhooks.

Sources (reference ``../shared/reference/carriers.md`` §3, its file ids): merchant code
#71607243654 (a Laravel integration's tests: paths, answer shapes, bulk tracking), #45300948924,
#59836960930 (a client's tests: the key stays out of errors), #55596036238 and #19202647403
(add-parcel fields). No vendor document was read.

Auth: the customer id and API key ride **in the URL path**:
``https://api.ozonexpress.ma/customers/{CUSTOMER_ID}/{API_KEY}/{action}`` (credentials
``CUSTOMER_ID``, ``API_KEY``). So no URL is ever logged or put in an error here: transport errors
are re-raised ``from None`` with a bare code, and urllib3's own debug line (which prints the path)
is redacted by a filter this module adds to the ``urllib3.connectionpool`` logger.

VERIFIED (seen in the merchant tests above, consistently):
- Every answer carries ``CHECK_API: {RESULT, MESSAGE}`` (``ERROR`` + "Please verify your API Key"
  on a bad key) and one block per action with its own ``RESULT``/``MESSAGE`` (``ADD-PARCEL``,
  ``PARCEL-INFO``, ``TRACKING``, ``ADD-BL`` …): an ``ERROR`` there arrives in HTTP 200 and is read
  as an error ("Ville invalide" → ``INVALID_ADDRESS``).
- Create: ``add-parcel``, a multipart form: ``parcel-receiver``, ``parcel-phone``, ``parcel-city``
  (Ozon's city id), ``parcel-address``, ``parcel-price``, ``parcel-note``, ``parcel-nature``,
  ``parcel-stock`` (0 pick-up, 1 Ozon's stock), ``parcel-open``, ``parcel-fragile``,
  ``parcel-replace``, ``products`` (JSON, for stock parcels). Options are sent under these names
  (``ParcelRequest.options``, e.g. ``{"parcel-open": "2"}``) over our defaults.
  Answer: ``ADD-PARCEL.NEW-PARCEL.TRACKING-NUMBER`` and fees per outcome (DELIVERED-PRICE …).
- Tracking: ``tracking`` with a JSON body ``{"tracking-number": [..]}`` answers ``TRACKING``
  keyed by tracking number, each with ``LAST_TRACKING`` and ``HISTORY`` (``STATUT``, ``COMMENT``,
  ``TIME`` Unix or ``TIME_STR``) keyed "1", "2" …
- Labels: a delivery note: ``add-delivery-note`` → ``ADD-BL.NEW-BL.REF``,
  ``add-parcel-to-delivery-note`` (``Ref``, ``Codes[i]``), ``save-delivery-note`` (``Ref``); its
  10×10 labels at ``https://client.ozoneexpress.ma/pdf-delivery-note-tickets-4-4?dn-ref=REF``.
- Cities: ``GET https://api.ozonexpress.ma/cities`` (no key) → ``CITIES`` keyed by id
  (``ID``, ``REF``, ``NAME``, fees).

UNVERIFIED (reference: "status list; longer list in #45300948924 looks invented"; "no webhook
doc"), and what this module assumes:
- Statuses: only Nouveau Colis, En cours de livraison, Livré, Refusé, Colis en litige are seen;
  the rest of ``default_status_map`` is the usual Moroccan vocabulary, to be confirmed.
- Webhooks: none documented → ``supports_webhooks = False``; ``verify_webhook`` refuses every
  request and ``parse_webhook`` raises. Tracking is by polling only.
- Find by our reference: Ozon has no documented search by the merchant's reference, so
  ``find_parcel`` raises ``CarrierError(PERMANENT, "find_not_supported")`` rather than answer
  "not found" (which would invite a duplicate). Some clients send their order id as the optional
  ``tracking-number`` of ``add-parcel`` (#19202647403), which would make it findable; not done
  until Ozon confirms such numbers are honoured and unique.
- Cancel: ``delete-parcel`` with ``tracking-number`` (answer block ``DELETE-PARCEL``) is assumed.
- The label PDF URL is a customer-portal link; that it serves the PDF to an API client is assumed.
- Batch size (50) and pace (1 request/s) are ours; no limit is documented.
- Carrier times are Morocco local time (Africa/Casablanca).
"""

import json
import logging
import re
from datetime import datetime
from decimal import Decimal
from typing import ClassVar
from zoneinfo import ZoneInfo

import requests
from urllib3.exceptions import NewConnectionError

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
from carriers.adapters.http_answers import retry_after_seconds

logger = logging.getLogger(__name__)

BASE_URL = "https://api.ozonexpress.ma"
CLIENT_URL = "https://client.ozoneexpress.ma"
LABELS_PATH = "/pdf-delivery-note-tickets-4-4"
CARRIER_TZ = ZoneInfo("Africa/Casablanca")
_ADDRESS_WORDS = ("ville", "city", "adresse", "address")
_KEY_IN_PATH = re.compile(r"(/customers/[^/\s]+/)[^/\s\"']+")


class _RedactKeyInPath(logging.Filter):
    """urllib3 logs each request line, path included; the path holds Ozon's key."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/customers/" in message:
            record.msg, record.args = _KEY_IN_PATH.sub(r"\1***", message), ()
        return True


_urllib3_log = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(existing, _RedactKeyInPath) for existing in _urllib3_log.filters):
    _urllib3_log.addFilter(_RedactKeyInPath())


def _carrier_time(entry: dict) -> datetime | None:
    stamp = str(entry.get("TIME") or "").strip()
    if stamp.isdigit():
        return datetime.fromtimestamp(int(stamp), tz=CARRIER_TZ)
    text = str(entry.get("TIME_STR") or "").strip()
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=CARRIER_TZ)
        except ValueError:
            continue
    return None


def _amount(value: Decimal) -> str:
    """MAD as Ozon reads them: "249" for 249.00, "249.5" for 249.50."""
    text = format(value.quantize(Decimal("0.01")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _numeric_key(key) -> tuple[int, str]:
    return (int(key), "") if str(key).isdigit() else (10**9, str(key))


@register
class OzonExpressAdapter:
    name: ClassVar[str] = "ozon"
    label: ClassVar[str] = "Ozon Express"
    track_batch_size: ClassVar[int] = 50
    requests_per_second: ClassVar[float] = 1.0
    supports_webhooks: ClassVar[bool] = False
    credential_names: ClassVar[tuple[str, ...]] = ("CUSTOMER_ID", "API_KEY")
    default_status_map: ClassVar[dict[str, tuple[State, Reason]]] = {
        fold(raw): value
        for raw, value in {
            "Nouveau Colis": (State.INFO_RECEIVED, Reason.NONE),
            "Attente De Ramassage": (State.INFO_RECEIVED, Reason.NONE),
            "Ramassé": (State.PICKED_UP, Reason.NONE),
            "Expédié": (State.IN_TRANSIT, Reason.NONE),
            "Reçu": (State.IN_TRANSIT, Reason.NONE),
            "Mis en distribution": (State.OUT_FOR_DELIVERY, Reason.NONE),
            "En cours de livraison": (State.OUT_FOR_DELIVERY, Reason.NONE),
            "Livré": (State.DELIVERED, Reason.NONE),
            "Refusé": (State.DELIVERY_FAILED, Reason.REFUSED),
            "Pas de réponse": (State.DELIVERY_FAILED, Reason.UNREACHABLE),
            "Injoignable": (State.DELIVERY_FAILED, Reason.UNREACHABLE),
            "Reporté": (State.DELIVERY_FAILED, Reason.POSTPONED),
            "Colis en litige": (State.ON_HOLD, Reason.OTHER),
            "Annulé": (State.CANCELLED, Reason.NONE),
            "Retour en cours": (State.RETURNING, Reason.NONE),
            "Retourné": (State.RETURNED, Reason.NONE),
        }.items()
    }

    def __init__(
        self,
        credentials: dict[str, str],
        *,
        base_url: str | None = None,
        webhook_secret: str = "",
        timeout: float = 10.0,
    ):
        self.base_url = (base_url or BASE_URL).rstrip("/")
        self.client_url = (base_url or CLIENT_URL).rstrip("/")
        self._customer_id = credentials["CUSTOMER_ID"]
        self._api_key = credentials["API_KEY"]
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"

    def __repr__(self) -> str:  # never the key
        return f"<OzonExpressAdapter customer={self._customer_id}>"

    # --- transport ---------------------------------------------------------------------------
    def _send(
        self, method: str, url: str, action: str, *, create: bool = False, **kwargs
    ) -> requests.Response:
        try:
            response = self.session.request(
                method, url, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.ConnectTimeout:
            raise CarrierError(ErrorKind.RETRYABLE, "connect_timeout") from None
        except requests.Timeout:
            raise CarrierError(ErrorKind.UNKNOWN if create else ErrorKind.RETRYABLE, "timeout") from None
        except requests.ConnectionError as exc:
            reason = getattr(exc.args[0], "reason", None) if exc.args else None
            refused = isinstance(reason, NewConnectionError)
            kind = ErrorKind.UNKNOWN if create and not refused else ErrorKind.RETRYABLE
            raise CarrierError(kind, "connection_refused" if refused else "connection_error") from None
        logger.info("ozon %s -> %s", action, response.status_code)  # the action, never the URL
        status = response.status_code
        if status == 429:
            raise CarrierError(
                ErrorKind.RETRYABLE, "429", "rate limited", retry_after=retry_after_seconds(response.headers)
            )
        if status == 504 and create:
            raise CarrierError(ErrorKind.UNKNOWN, "504", "gateway timeout")
        if status >= 500:
            raise CarrierError(
                ErrorKind.RETRYABLE, str(status), retry_after=retry_after_seconds(response.headers)
            )
        if status >= 400:
            raise CarrierError(ErrorKind.PERMANENT, str(status))
        return response

    def _call(self, action: str, block: str, *, create: bool = False, **kwargs) -> dict:
        """POST ``action`` and return its answer block, read through both RESULT layers."""
        url = f"{self.base_url}/customers/{self._customer_id}/{self._api_key}/{action}"
        response = self._send("POST", url, action, create=create, **kwargs)
        unreadable = ErrorKind.UNKNOWN if create else ErrorKind.RETRYABLE
        try:
            body = response.json()
        except ValueError:
            raise CarrierError(unreadable, "unreadable", "answer is not JSON") from None
        if not isinstance(body, dict):
            raise CarrierError(unreadable, "unreadable")
        check = body.get("CHECK_API") or {}
        if str(check.get("RESULT", "")).upper() != "SUCCESS":
            raise CarrierError(
                ErrorKind.PERMANENT, "check_api", str(check.get("MESSAGE") or "API key refused")
            )
        answer = body.get(block)
        if not isinstance(answer, dict):
            raise CarrierError(unreadable, "unreadable", f"no {block} block")
        if str(answer.get("RESULT", "SUCCESS")).upper() == "ERROR":
            message = str(answer.get("MESSAGE") or "")
            folded = fold(message)
            address = any(word in folded for word in _ADDRESS_WORDS)
            raise CarrierError(ErrorKind.INVALID_ADDRESS if address else ErrorKind.PERMANENT, block, message)
        return answer

    # --- parcels -------------------------------------------------------------------------------
    def create_parcel(self, parcel: ParcelRequest) -> ParcelCreated:
        fields = {
            "parcel-receiver": parcel.recipient_name,
            "parcel-phone": parcel.phone,
            "parcel-city": parcel.city,
            "parcel-address": parcel.address,
            "parcel-price": _amount(parcel.cod_amount),
            "parcel-nature": parcel.description,
            "parcel-note": "",
            "parcel-stock": "0",
            "parcel-open": "1",
            "parcel-fragile": "0",
            "parcel-replace": "0",
        }
        for key, value in parcel.options.items():
            fields[key] = json.dumps(value) if isinstance(value, list | dict) else str(value)
        multipart = {key: (None, value) for key, value in fields.items()}
        answer = self._call("add-parcel", "ADD-PARCEL", create=True, files=multipart)
        new = answer.get("NEW-PARCEL") if isinstance(answer.get("NEW-PARCEL"), dict) else {}
        code = str(new.get("TRACKING-NUMBER") or "")
        if not code:
            raise CarrierError(ErrorKind.UNKNOWN, "no_tracking_number", "create answered without a number")
        fee = new.get("DELIVERED-PRICE")
        logger.info("ozon parcel %s created for %s", code, parcel.reference)
        return ParcelCreated(
            tracking_number=code,
            fee=Decimal(str(fee)) if fee not in (None, "") else None,
            carrier_reference=parcel.reference,
            raw=new,
        )

    def find_parcel(self, reference: str) -> ParcelCreated | None:
        raise CarrierError(
            ErrorKind.PERMANENT, "find_not_supported", "Ozon Express cannot be searched by our reference"
        )

    def cancel_parcel(self, tracking_number: str) -> None:
        self._call("delete-parcel", "DELETE-PARCEL", data={"tracking-number": tracking_number})
        logger.info("ozon parcel %s cancelled", tracking_number)

    def label_pdf(self, tracking_numbers: list[str]) -> bytes:
        if not tracking_numbers:
            raise CarrierError(ErrorKind.PERMANENT, "no_parcels")
        note = self._call("add-delivery-note", "ADD-BL")
        ref = str((note.get("NEW-BL") or {}).get("REF") or "")
        if not ref:
            raise CarrierError(ErrorKind.RETRYABLE, "no_note_ref", "delivery note answered without a ref")
        codes = {f"Codes[{i}]": (None, code) for i, code in enumerate(tracking_numbers)}
        self._call("add-parcel-to-delivery-note", "ADD-PARCEL-BL", files={"Ref": (None, ref), **codes})
        self._call("save-delivery-note", "SAVE-BL", files={"Ref": (None, ref)})
        response = self._send("GET", self.client_url + LABELS_PATH, "labels", params={"dn-ref": ref})
        if not response.content.startswith(b"%PDF"):
            raise CarrierError(ErrorKind.PERMANENT, "not_a_pdf", f"delivery note {ref} gave no PDF")
        return response.content

    # --- tracking ------------------------------------------------------------------------------
    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        updates: list[TrackingUpdate] = []
        for start in range(0, len(tracking_numbers), self.track_batch_size):
            batch = tracking_numbers[start : start + self.track_batch_size]
            answer = self._call("tracking", "TRACKING", json={"tracking-number": batch})
            # One number can come back in the single shape (the block is that parcel).
            by_code = {answer["TRACKING-NUMBER"]: answer} if "TRACKING-NUMBER" in answer else answer
            for code in batch:
                parcel = by_code.get(code)
                if not isinstance(parcel, dict) or str(parcel.get("RESULT", "SUCCESS")).upper() == "ERROR":
                    continue
                history = parcel.get("HISTORY") or {}
                entries = (
                    [history[key] for key in sorted(history, key=_numeric_key)]
                    if isinstance(history, dict)
                    else list(history)
                )
                if not entries and isinstance(parcel.get("LAST_TRACKING"), dict):
                    entries = [parcel["LAST_TRACKING"]]
                updates.extend(
                    TrackingUpdate(
                        tracking_number=code,
                        raw_code=str(entry.get("STATUT") or ""),
                        raw_text=str(entry.get("COMMENT") or ""),
                        occurred_at=_carrier_time(entry),
                        raw=dict(entry),
                    )
                    for entry in entries
                    if isinstance(entry, dict) and entry.get("STATUT")
                )
        return updates

    # --- webhooks: none ------------------------------------------------------------------------
    def verify_webhook(self, headers: dict, body: bytes) -> bool:
        return False  # Ozon Express documents no webhook: nothing posted to us can be trusted

    def parse_webhook(self, headers: dict, body: bytes) -> list[TrackingUpdate]:
        raise CarrierError(ErrorKind.PERMANENT, "no_webhooks", "Ozon Express sends no webhooks; poll instead")

    # --- reference data -----------------------------------------------------------------------
    def cities(self) -> list[City]:
        response = self._send("GET", f"{self.base_url}/cities", "cities")
        try:
            body = response.json()
        except ValueError:
            raise CarrierError(ErrorKind.RETRYABLE, "unreadable", "answer is not JSON") from None
        found = body.get("CITIES") if isinstance(body, dict) else None
        rows = found.values() if isinstance(found, dict) else (found or [])
        return [
            City(carrier_city_id=str(row["ID"]), name=str(row["NAME"]))
            for row in rows
            if isinstance(row, dict) and row.get("ID") is not None and row.get("NAME")
        ]
