"""Ameex (Morocco): parcels, labels, tracking and signed webhooks.

Sources (reference ``../shared/reference/carriers.md`` §3, its file ids): vendor doc
https://documenter.getpostman.com/view/10265205/2sA3rwLZD1 (Postman collection, not read directly);
merchant code #70737538919 (client), #55044181412 (service: paths, Relaunch), #61491812103 (label
print URL), #70410246319 (webhook signature, MassTracking up to 100).

Auth: two headers on every call, ``C-Api-Id`` and ``C-Api-Key`` (credentials ``API_ID``,
``API_KEY``). Base URL ``https://api.ameex.app``. Bodies are form-encoded.

VERIFIED (seen in more than one merchant client, matching the vendor collection's names):
- Ameex answers **HTTP 200 to everything**, errors included, on two layers: ``{"login": "error"}``
  when the id/key pair is wrong (checked before routing, so an unknown path answers the same), then
  ``{"login": "success", "api": {"type": "error", "msg": "Veuillez …"}}`` when the call is refused.
  Both are read as errors here; an HTTP 429/5xx from a front proxy is read as usual.
- Create: form POST ``/customer/Delivery/Parcels/Action/Type/Add`` with ``city`` = Ameex's numeric
  city id (a name is refused), ``cod``, ``order_num`` (our reference), ``receiver``, ``phone``,
  ``address``, ``product``, ``comment``. Anything in ``ParcelRequest.options`` is sent as extra form
  fields under the carrier's own names (e.g. ``business``, ``type``).
- Tracking: form POST ``/customer/Delivery/Parcels/MassTracking`` with ``codes=a,b,…``; a parcel's
  history is an object keyed by "1", "2", … (sort the keys numerically, not as strings).
- Labels: GET ``/customer/Delivery/DeliveryNotes/Print/Type/Labels?Ref=…&LabelType=Label_100_100``
  (``Ref`` a parcel code, or a delivery note's ref for several parcels).
- Raw statuses: French ``statut_name`` ("Ramassé", "Livré", "Annulé" …); the account's own list at
  GET ``/customer/Delivery/Parcels/Statuts``.
- Cities: GET ``/customer/Delivery/Cities`` → ``api.cities`` keyed by id, ``{id, name}``.

UNVERIFIED (reference: "signature; batch ≤25 (#70737538919) or ≤100 (#70410246319); full status
list"), and what this module had to assume:
- Webhook: form body signed with HMAC-SHA256 over ``timestamp + "." + raw body`` in
  ``X-Ameex-Signature`` (hex; a ``sha256=`` prefix is accepted), 5-minute tolerance
  (#70410246319, third-party code). The header carrying the timestamp is assumed to be
  ``X-Ameex-Timestamp`` (Unix seconds); the form fields ``code`` and ``statut_name`` (plus
  ``comment``, ``date``) are assumed.
- Batch size: 25 here, the smaller of the two figures seen.
- Rate limit: none documented; ``requests_per_second`` = 1 is our own pace.
- Find by reference: the list endpoint ``POST /customer/Delivery/Parcels/Json`` takes DataTables
  paging (``start``/``length``, seen in #70737538919); filtering with ``search[value]`` is assumed,
  and rows are matched on ``order_num`` exactly, so a loose search cannot mislead.
- Cancel: ``GET /customer/Delivery/Parcels/Action/Type/Delete?ParcelCode=`` is assumed from the
  ``Action/Type/*`` pattern (a delete exists in #61491812103's UI; its Ameex path is not shown).
- Several labels at once: a delivery note is created (``POST …/DeliveryNotes/Action/Type/Add`` →
  ``api.data.ref``), filled (``POST …/DeliveryNotes/Action/Type/AddParcels?Ref=`` with
  ``codes=a,b``) and its labels printed; these two paths follow #61491812103's flow, not the doc.
- The create answer's parcel code is read at ``api.data.code`` (#55044181412 also tries
  ``data.code`` and ``code``; so does this module).
- Error wording: a refusal mentioning the city ("ville") or the address ("adresse") is read as
  ``INVALID_ADDRESS``; any other ``api.type = error`` as ``PERMANENT``.
- Carrier times are Morocco local time (Africa/Casablanca).

Nothing here logs credentials or personal data: only parcel codes, our references and statuses.
"""

import hashlib
import hmac
import logging
import time
from datetime import datetime
from typing import ClassVar
from urllib.parse import parse_qs
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
from carriers.adapters.http_answers import header_value, retry_after_seconds

logger = logging.getLogger(__name__)

BASE_URL = "https://api.ameex.app"
ADD = "/customer/Delivery/Parcels/Action/Type/Add"
DELETE = "/customer/Delivery/Parcels/Action/Type/Delete"
LIST = "/customer/Delivery/Parcels/Json"
MASS_TRACKING = "/customer/Delivery/Parcels/MassTracking"
CITIES = "/customer/Delivery/Cities"
LABELS = "/customer/Delivery/DeliveryNotes/Print/Type/Labels"
NOTE_ADD = "/customer/Delivery/DeliveryNotes/Action/Type/Add"
NOTE_ADD_PARCELS = "/customer/Delivery/DeliveryNotes/Action/Type/AddParcels"

SIGNATURE_HEADER = "X-Ameex-Signature"
TIMESTAMP_HEADER = "X-Ameex-Timestamp"
SIGNATURE_TOLERANCE = 300  # seconds
CARRIER_TZ = ZoneInfo("Africa/Casablanca")

# Folded words in a refusal that point at the destination rather than the request.
_ADDRESS_WORDS = ("ville", "city", "adresse", "address")


def _carrier_time(value) -> datetime | None:
    if not value:
        return None
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), tz=CARRIER_TZ)
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=CARRIER_TZ)
        except ValueError:
            continue
    return None


def _first(mapping: dict, *keys: str) -> str:
    for key in keys:
        value = mapping.get(key)
        if value not in (None, ""):
            return str(value)
    return ""


@register
class AmeexAdapter:
    name: ClassVar[str] = "ameex"
    label: ClassVar[str] = "Ameex"
    track_batch_size: ClassVar[int] = 25
    requests_per_second: ClassVar[float] = 1.0
    supports_webhooks: ClassVar[bool] = True
    credential_names: ClassVar[tuple[str, ...]] = ("API_ID", "API_KEY")
    default_status_map: ClassVar[dict[str, tuple[State, Reason]]] = {
        fold(raw): value
        for raw, value in {
            "Nouveau colis": (State.INFO_RECEIVED, Reason.NONE),
            "Attente de ramassage": (State.INFO_RECEIVED, Reason.NONE),
            "Ramassé": (State.PICKED_UP, Reason.NONE),
            "Expédié": (State.IN_TRANSIT, Reason.NONE),
            "Reçu": (State.IN_TRANSIT, Reason.NONE),
            "Mis en distribution": (State.OUT_FOR_DELIVERY, Reason.NONE),
            "En cours de livraison": (State.OUT_FOR_DELIVERY, Reason.NONE),
            "Livré": (State.DELIVERED, Reason.NONE),
            "Refusé": (State.DELIVERY_FAILED, Reason.REFUSED),
            "Pas de réponse": (State.DELIVERY_FAILED, Reason.UNREACHABLE),
            "Injoignable": (State.DELIVERY_FAILED, Reason.UNREACHABLE),
            "Numéro erroné": (State.DELIVERY_FAILED, Reason.UNREACHABLE),
            "Adresse erronée": (State.DELIVERY_FAILED, Reason.WRONG_ADDRESS),
            "Reporté": (State.DELIVERY_FAILED, Reason.POSTPONED),
            "Annulé": (State.CANCELLED, Reason.NONE),
            "Retour en cours": (State.RETURNING, Reason.NONE),
            "Retourné": (State.RETURNED, Reason.NONE),
            "Perdu": (State.LOST, Reason.LOST),
            "Endommagé": (State.ON_HOLD, Reason.DAMAGED),
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
        self.webhook_secret = webhook_secret
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update(
            {
                "C-Api-Id": credentials["API_ID"],
                "C-Api-Key": credentials["API_KEY"],
                "Accept": "application/json",
            }
        )

    # --- transport ---------------------------------------------------------------------------
    def _send(self, method: str, path: str, *, create: bool = False, **kwargs) -> requests.Response:
        """One HTTP call; transport failures and HTTP-level refusals → ``CarrierError``."""
        try:
            response = self.session.request(
                method, self.base_url + path, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.ConnectTimeout:
            raise CarrierError(ErrorKind.RETRYABLE, "connect_timeout") from None
        except requests.Timeout:
            # The request went out: a create may have been taken.
            kind = ErrorKind.UNKNOWN if create else ErrorKind.RETRYABLE
            raise CarrierError(kind, "timeout") from None
        except requests.ConnectionError as exc:
            refused = (
                isinstance(getattr(exc.args[0], "reason", None), NewConnectionError) if exc.args else False
            )
            kind = ErrorKind.UNKNOWN if create and not refused else ErrorKind.RETRYABLE
            raise CarrierError(kind, "connection_refused" if refused else "connection_error") from None
        logger.info("ameex %s %s -> %s", method, path, response.status_code)
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

    def _api(self, method: str, path: str, *, create: bool = False, **kwargs) -> dict:
        """A JSON call, read through Ameex's two error layers; returns the ``api`` object."""
        response = self._send(method, path, create=create, **kwargs)
        try:
            body = response.json()
        except ValueError:
            kind = ErrorKind.UNKNOWN if create else ErrorKind.RETRYABLE
            raise CarrierError(kind, "unreadable", "answer is not JSON") from None
        if not isinstance(body, dict):
            raise CarrierError(ErrorKind.UNKNOWN if create else ErrorKind.RETRYABLE, "unreadable")
        if body.get("login") != "success":
            raise CarrierError(ErrorKind.PERMANENT, "login", "Ameex refused the API id/key")
        api = body.get("api")
        if not isinstance(api, dict):
            raise CarrierError(
                ErrorKind.UNKNOWN if create else ErrorKind.RETRYABLE, "unreadable", "no api object"
            )
        if str(api.get("type", "")).lower() == "error":
            message = str(api.get("msg") or api.get("message") or "")
            folded = fold(message)
            kind = (
                ErrorKind.INVALID_ADDRESS
                if any(word in folded for word in _ADDRESS_WORDS)
                else ErrorKind.PERMANENT
            )
            raise CarrierError(kind, "api_error", message)
        return api

    # --- parcels -------------------------------------------------------------------------------
    def create_parcel(self, parcel: ParcelRequest) -> ParcelCreated:
        form = {
            "order_num": parcel.reference,
            "receiver": parcel.recipient_name,
            "phone": parcel.phone,
            "city": parcel.city,
            "address": parcel.address,
            "cod": f"{parcel.cod_amount:.2f}",
            "product": parcel.description,
            "qty": str(parcel.quantity),
            "comment": str(parcel.options.get("comment", "")),
        }
        form.update({key: str(value) for key, value in parcel.options.items() if key != "comment"})
        api = self._api("POST", ADD, create=True, data=form)
        data = api.get("data") if isinstance(api.get("data"), dict) else {}
        code = _first(data, "code", "Code", "parcel_code") or _first(api, "code", "Code")
        if not code:
            raise CarrierError(ErrorKind.UNKNOWN, "no_code", "create answered without a parcel code")
        logger.info("ameex parcel %s created for %s", code, parcel.reference)
        return ParcelCreated(tracking_number=code, carrier_reference=parcel.reference, raw=api)

    def find_parcel(self, reference: str) -> ParcelCreated | None:
        api = self._api(
            "POST", LIST, data={"start": "0", "length": "25", "all_data": "1", "search[value]": reference}
        )
        rows = api.get("data") if isinstance(api.get("data"), list) else []
        for row in rows:
            if isinstance(row, dict) and str(row.get("order_num", "")) == reference:
                code = _first(row, "code", "Code", "parcel_code")
                if code:
                    return ParcelCreated(tracking_number=code, carrier_reference=reference, raw=row)
        return None

    def cancel_parcel(self, tracking_number: str) -> None:
        self._api("GET", DELETE, params={"ParcelCode": tracking_number})
        logger.info("ameex parcel %s cancelled", tracking_number)

    def label_pdf(self, tracking_numbers: list[str]) -> bytes:
        if not tracking_numbers:
            raise CarrierError(ErrorKind.PERMANENT, "no_parcels")
        if len(tracking_numbers) == 1:
            ref = tracking_numbers[0]
        else:
            note = self._api("POST", NOTE_ADD)
            data = note.get("data") if isinstance(note.get("data"), dict) else {}
            ref = _first(data, "ref", "Ref")
            if not ref:
                raise CarrierError(ErrorKind.RETRYABLE, "no_note_ref", "delivery note answered without a ref")
            self._api(
                "POST", NOTE_ADD_PARCELS, params={"Ref": ref}, data={"codes": ",".join(tracking_numbers)}
            )
        response = self._send("GET", LABELS, params={"Ref": ref, "LabelType": "Label_100_100"})
        if not response.content.startswith(b"%PDF"):
            # Errors come back as JSON in HTTP 200 here too.
            try:
                body = response.json()
            except ValueError:
                body = {}
            if isinstance(body, dict) and body.get("login") == "error":
                raise CarrierError(ErrorKind.PERMANENT, "login", "Ameex refused the API id/key")
            message = str((body.get("api") or {}).get("msg", "")) if isinstance(body, dict) else ""
            raise CarrierError(ErrorKind.PERMANENT, "not_a_pdf", message)
        return response.content

    # --- tracking ------------------------------------------------------------------------------
    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        updates: list[TrackingUpdate] = []
        for start in range(0, len(tracking_numbers), self.track_batch_size):
            batch = tracking_numbers[start : start + self.track_batch_size]
            api = self._api("POST", MASS_TRACKING, data={"codes": ",".join(batch)})
            data = api.get("data") if isinstance(api.get("data"), dict) else {}
            for code in batch:
                history = data.get(code)
                if isinstance(history, dict):
                    entries = [history[key] for key in sorted(history, key=_numeric_key)]
                elif isinstance(history, list):
                    entries = history
                else:
                    continue
                updates.extend(self._update(code, entry) for entry in entries if isinstance(entry, dict))
        return updates

    @staticmethod
    def _update(code: str, entry: dict) -> TrackingUpdate:
        return TrackingUpdate(
            tracking_number=code,
            raw_code=_first(entry, "statut_name", "STATUT_NAME", "status_name"),
            raw_text=_first(entry, "comment", "COMMENT"),
            occurred_at=_carrier_time(_first(entry, "date", "DATE", "time")),
            location=_first(entry, "city", "location"),
            event_id=_first(entry, "id", "ID"),
            raw=dict(entry),
        )

    # --- webhooks ------------------------------------------------------------------------------
    def verify_webhook(self, headers: dict, body: bytes) -> bool:
        signature = header_value(headers, SIGNATURE_HEADER).strip().removeprefix("sha256=")
        timestamp = header_value(headers, TIMESTAMP_HEADER).strip()
        if not self.webhook_secret or not signature or not timestamp.isdigit():
            return False
        if abs(time.time() - int(timestamp)) > SIGNATURE_TOLERANCE:
            return False
        expected = hmac.new(
            self.webhook_secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, signature.lower())

    def parse_webhook(self, headers: dict, body: bytes) -> list[TrackingUpdate]:
        form = {key: values[-1] for key, values in parse_qs(body.decode(), keep_blank_values=True).items()}
        code = _first(form, "code", "parcel_code", "ParcelCode")
        if not code or not _first(form, "statut_name", "status_name"):
            raise CarrierError(ErrorKind.PERMANENT, "bad_webhook", "no parcel code or status")
        return [self._update(code, form)]

    # --- reference data -----------------------------------------------------------------------
    def cities(self) -> list[City]:
        api = self._api("GET", CITIES)
        found = api.get("cities")
        rows = found.items() if isinstance(found, dict) else enumerate(found or [])
        cities = []
        for key, row in rows:
            if isinstance(row, dict) and row.get("name"):
                cities.append(City(carrier_city_id=str(row.get("id", key)), name=str(row["name"])))
        return cities


def _numeric_key(key: str) -> tuple[int, str]:
    return (int(key), "") if str(key).isdigit() else (10**9, str(key))
