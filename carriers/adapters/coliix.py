"""Coliix (Morocco): create parcels, track them, and take its secret-URL webhook.

Sources (reference ``../shared/reference/carriers.md`` §3, its file ids): merchant code
#70848157644 (client: endpoint, form, errors in HTTP 200), #53179959033 (webhook fields, create
fields), #53858589377 (webhook authenticated by a secret URL only), #53865847374 (dedupe by hash),
and #58205951195 (tests of a client for the same seller-API platform, answer shapes). No vendor
document was read.

Auth: a form field ``token`` on every call (credential ``TOKEN``). One endpoint takes every action
by its ``action`` field: ``https://my.coliix.com/casa/seller/api-parcels`` (the ``casa`` hub;
other hubs have their own path, e.g. ``/aga/seller/api-parcels``: give the full endpoint as
``base_url``, or an origin and ``/casa/seller/api-parcels`` is added).

VERIFIED (several merchant clients agree):
- Errors arrive in **HTTP 200**: ``{"status": 401, "msg": "Token invalide…"}``,
  ``{"status": 204, "msg": "Le compte est désactivé"}``; a create succeeds with ``status`` 200
  (a number) and ``tracking``; a track succeeds with ``status`` ``true`` (a boolean) and ``msg`` the
  history (a list of ``{status, time, …}``), empty for an unknown number.
- Create: ``action=add`` with ``name``, ``phone``, ``ville`` (a city **name**), ``adresse``,
  ``price`` (the cash to collect), ``note``, ``marchandise``, ``marchandise_qty``.
- Webhook: GET or POST with ``code`` (tracking), ``state``, ``datereported``, ``note``; no
  signature, no header: the only proof is a secret in the URL Livra registers with Coliix.
- Raw statuses are French: Attente De Ramassage, Ramassé, Expédié, Livré, Refusé.

UNVERIFIED (reference: "the rest"), and what this module assumes:
- Webhook auth: the URL registered at Coliix is Livra's carrier webhook URL with
  ``?token=<webhook_secret>``. ``verify_webhook`` reads that query from ``headers["QUERY_STRING"]``
  (what Django's ``request.META`` holds: pass ``request.META``, or any dict with that key), and
  compares it with ``hmac.compare_digest``. Treat a verified call as a trigger and re-fetch when in
  doubt: anyone holding the URL can post (reference §4). GET webhooks carry their fields in the
  same query string, so ``parse_webhook`` reads the query and the form body together.
- Field names: ``marchandise``/``marchandise_qty`` (#58205951195; #53179959033 writes
  ``merchandise``): confirm with Coliix. Webhook aliases are accepted as #53858589377 does
  (``tracking``/``code``, ``state``/``status``, ``note``/``comment``, ``datereported``/``date``).
- Not found in any source, so refused with ``CarrierError(PERMANENT, "<what>_not_supported")``
  rather than guessed: find by our reference (no reference field is known on create: never answer
  "not found", which would invite a duplicate), cancel, labels, and the city list (Coliix takes
  city names; match them on our side).
- Tracking is one number per call (``track_batch_size`` = 1); no rate limit is documented:
  ``requests_per_second`` = 2 is ours (#53179959033 waits 300 ms between calls).
- The rest of ``default_status_map`` beyond the five above is the usual Moroccan vocabulary.
- Carrier times are Morocco local time (Africa/Casablanca).
"""

import hmac
import json
import logging
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
from carriers.adapters.http_answers import retry_after_seconds

logger = logging.getLogger(__name__)

ENDPOINT = "https://my.coliix.com/casa/seller/api-parcels"
DEFAULT_PATH = "/casa/seller/api-parcels"
WEBHOOK_TOKEN_PARAM = "token"  # noqa: S105 - the name of the query parameter, not a secret
CARRIER_TZ = ZoneInfo("Africa/Casablanca")
_ADDRESS_WORDS = ("ville", "city", "adresse", "address")


def _carrier_time(value) -> datetime | None:
    text = str(value or "").strip()
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
            return str(value).strip()
    return ""


def _query_string(headers: dict) -> str:
    for key, value in headers.items():
        if key.upper().replace("-", "_") == "QUERY_STRING":
            return str(value or "")
    return ""


def _unsupported(what: str) -> CarrierError:
    return CarrierError(ErrorKind.PERMANENT, f"{what}_not_supported", f"Coliix has no known API for {what}")


@register
class ColiixAdapter:
    name: ClassVar[str] = "coliix"
    label: ClassVar[str] = "Coliix"
    track_batch_size: ClassVar[int] = 1
    requests_per_second: ClassVar[float] = 2.0
    supports_webhooks: ClassVar[bool] = True
    # Its pushes may come as GET, and prove only that the URL is known: re-poll what they name.
    webhook_accepts_get: ClassVar[bool] = True
    webhook_is_trigger: ClassVar[bool] = True
    webhook_token_in_query: ClassVar[str] = WEBHOOK_TOKEN_PARAM
    credential_names: ClassVar[tuple[str, ...]] = ("TOKEN",)
    default_status_map: ClassVar[dict[str, tuple[State, Reason]]] = {
        fold(raw): value
        for raw, value in {
            "Nouveau Colis": (State.INFO_RECEIVED, Reason.NONE),
            "Attente De Ramassage": (State.INFO_RECEIVED, Reason.NONE),
            "Ramassé": (State.PICKED_UP, Reason.NONE),
            "Expédié": (State.IN_TRANSIT, Reason.NONE),
            "Reçu": (State.IN_TRANSIT, Reason.NONE),
            "Mise en distribution": (State.OUT_FOR_DELIVERY, Reason.NONE),
            "En cours de livraison": (State.OUT_FOR_DELIVERY, Reason.NONE),
            "Livré": (State.DELIVERED, Reason.NONE),
            "Refusé": (State.DELIVERY_FAILED, Reason.REFUSED),
            "Pas de réponse": (State.DELIVERY_FAILED, Reason.UNREACHABLE),
            "Injoignable": (State.DELIVERY_FAILED, Reason.UNREACHABLE),
            "Reporté": (State.DELIVERY_FAILED, Reason.POSTPONED),
            "Annulé": (State.CANCELLED, Reason.NONE),
            "Retour en route": (State.RETURNING, Reason.NONE),
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
        url = (base_url or ENDPOINT).rstrip("/")
        self.endpoint = url if url.endswith("/api-parcels") else url + DEFAULT_PATH
        self._token = credentials["TOKEN"]
        self.webhook_secret = webhook_secret
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"

    def __repr__(self) -> str:  # never the token
        return "<ColiixAdapter>"

    # --- transport ---------------------------------------------------------------------------
    def _post(self, action: str, fields: dict[str, str], *, create: bool = False) -> dict:
        """POST one action; transport, HTTP and in-200 errors → ``CarrierError``."""
        try:
            response = self.session.post(
                self.endpoint,
                data={"action": action, "token": self._token, **fields},
                timeout=self.timeout,
                allow_redirects=False,
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
        logger.info("coliix %s -> %s", action, response.status_code)
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
        unreadable = ErrorKind.UNKNOWN if create else ErrorKind.RETRYABLE
        try:
            body = response.json()
        except ValueError:
            raise CarrierError(unreadable, "unreadable", "answer is not JSON") from None
        if not isinstance(body, dict):
            raise CarrierError(unreadable, "unreadable")
        # Success is status 200 (a number) on add and true (a boolean) on track.
        success = body.get("status") is True or (
            not isinstance(body.get("status"), bool) and str(body.get("status")) == "200"
        )
        if not success:
            message = body.get("msg") if isinstance(body.get("msg"), str) else ""
            folded = fold(message)
            kind = (
                ErrorKind.INVALID_ADDRESS
                if any(word in folded for word in _ADDRESS_WORDS)
                else ErrorKind.PERMANENT
            )
            raise CarrierError(kind, str(body.get("status", "")), message)
        return body

    # --- parcels -------------------------------------------------------------------------------
    def create_parcel(self, parcel: ParcelRequest) -> ParcelCreated:
        fields = {
            "name": parcel.recipient_name,
            "phone": parcel.phone,
            "ville": parcel.city,
            "adresse": parcel.address,
            "price": f"{parcel.cod_amount:.2f}",
            "note": "",
            "marchandise": parcel.description,
            "marchandise_qty": str(parcel.quantity),
        }
        fields.update({key: str(value) for key, value in parcel.options.items()})
        body = self._post("add", fields, create=True)
        tracking = _first(body, "tracking", "code")
        if not tracking:
            raise CarrierError(ErrorKind.UNKNOWN, "no_tracking", "create answered without a tracking code")
        logger.info("coliix parcel %s created for %s", tracking, parcel.reference)
        return ParcelCreated(tracking_number=tracking, carrier_reference=parcel.reference, raw=body)

    def find_parcel(self, reference: str) -> ParcelCreated | None:
        raise _unsupported("find")

    def cancel_parcel(self, tracking_number: str) -> None:
        raise _unsupported("cancel")

    def label_pdf(self, tracking_numbers: list[str]) -> bytes:
        raise _unsupported("label")

    def cities(self) -> list[City]:
        raise _unsupported("cities")

    # --- tracking ------------------------------------------------------------------------------
    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        updates: list[TrackingUpdate] = []
        for tracking in tracking_numbers:
            body = self._post("track", {"tracking": tracking})
            history = body.get("msg") if isinstance(body.get("msg"), list) else []
            updates.extend(
                self._update(tracking, entry)
                for entry in history
                if isinstance(entry, dict) and entry.get("status")
            )
        return updates

    @staticmethod
    def _update(tracking: str, entry: dict) -> TrackingUpdate:
        return TrackingUpdate(
            tracking_number=tracking,
            raw_code=_first(entry, "status", "state", "new_state"),
            raw_text=_first(entry, "note", "comment", "driver_note"),
            occurred_at=_carrier_time(_first(entry, "time", "datereported", "date")),
            raw=dict(entry),
        )

    # --- webhooks ------------------------------------------------------------------------------
    def verify_webhook(self, headers: dict, body: bytes) -> bool:
        if not self.webhook_secret:
            return False
        given = parse_qs(_query_string(headers)).get(WEBHOOK_TOKEN_PARAM, [""])[-1]
        return bool(given) and hmac.compare_digest(given.encode(), self.webhook_secret.encode())

    def parse_webhook(self, headers: dict, body: bytes) -> list[TrackingUpdate]:
        fields = {key: values[-1] for key, values in parse_qs(_query_string(headers)).items()}
        text = body.decode(errors="replace").strip()
        if text.startswith("{"):
            try:
                decoded = json.loads(text)
            except ValueError:
                raise CarrierError(ErrorKind.PERMANENT, "bad_webhook", "unreadable JSON body") from None
            fields.update({key: str(value) for key, value in decoded.items() if value is not None})
        else:
            fields.update({key: values[-1] for key, values in parse_qs(text).items()})
        fields.pop(WEBHOOK_TOKEN_PARAM, None)
        tracking = _first(fields, "code", "tracking", "tracking_code", "trackingCode", "ref")
        if not tracking or not _first(fields, "state", "status", "new_state"):
            raise CarrierError(ErrorKind.PERMANENT, "bad_webhook", "no tracking code or state")
        return [self._update(tracking, fields)]
