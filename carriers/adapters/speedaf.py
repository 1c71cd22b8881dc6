"""Speedaf Express (Morocco and other markets): the Open API, v2 endpoints.

Sources: ``../shared/reference/carriers.md`` §3 (Speedaf rows), which cites #71063965212 (a
merchant's summary of Speedaf's "Open API" PDF, v2) and #43272299972 (Speedaf's own test script
of its tracking push, with the numeric ``action`` codes). Third-party code seen while writing this
(behaviour in the wild, not vendor docs): a Laravel client that follows the same PDF (envelope,
error table §2.1.3, problem codes §5.3, webhook headers §5.5) and a Node client of the same API.

Auth scheme. Every call is ``POST {base}/open-api/<path>?appCode=<APP_CODE>&timestamp=<ms>`` with a
JSON body ``{"data": ...}``; a stale timestamp is refused with 70502, a wrong app code with 70401.
No request signature in v2 (the older v1 endpoints DES-encrypted the body with the secret key:
not used here). The secret key only signs Speedaf's pushes to us (``webhook_secret``).

Answers come as HTTP 200 with ``{"success": bool, "error": {"code", "message"} | null, "data"}``:
an error is read from ``success``/``error``, never from the HTTP status.

Endpoints used (base ``https://apis.speedaf.com/``, UAT ``https://uat-api.speedaf.com/``):
``open-api/express/order/v2/createOrder`` (one order; our reference in ``customOrderNo`` →
``billCode``), ``…/v2/cancelOrder`` (a list), ``…/v2/print`` (``waybillNoList`` → label URLs),
``open-api/express/track/v2/query`` (``mailNoList`` → ``[{mailNo, tracks[]}]``),
``open-api/common/area/v2/getTreeByCountryCode`` (country → province → city → district).

Rate limits: none documented; ``requests_per_second`` is our own polite pace.

VERIFIED (reference + vendor test script): base URLs; query auth and 70502; the paths above;
``action`` 1 pick-up, 2 dispatch (sent from a site), 3 arrival, 4 out for delivery, 5 signed
(delivered), -710 returning, 730 return signed (#43272299972 and the Node client).

UNVERIFIED (reference: "signature; full code list (vendor PDF)"):
- The push signature: ``X-Speedaf-Signature: hmac-sha256=<hex HMAC-SHA256(secret, timestamp + "\\n"
  + raw body)>`` with the timestamp in ``X-Speedaf-Timestamp`` (ms), the event id in the body's
  ``eventId`` (third-party code only). We also refuse a push more than 5 minutes old.
- The problem codes IP01…IP16 and 5573 (third-party copy of PDF §5.3), and where they ride: we
  read them from ``subAction`` ("IP05-02" → "IP05"); otherwise the raw code is ``action``.
- The cross-border scan codes 150…401 (Speedaf's test script; Chinese warehouse scans).
- ``timezone`` in a track is read as the UTC offset in hours of ``time``.
- Business error codes (a field missing, a city not served) are not in our sources: they are
  classified by their wording (city/area/address → INVALID_ADDRESS, else PERMANENT).
- No lookup of an order by our reference is known in the v2 API: ``find_parcel`` cannot
  reconcile a timed-out create and says so (``CarrierError(UNKNOWN)``), for a person to check.
- Batch size of the track query (20 here) and of the print call.
- The print answer's shape ``{"urls": [...], "orderLabels": [...]}``: we download the URLs.
"""

import hashlib
import hmac
import json
import logging
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar

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
    merge_pdfs,
    register,
)
from carriers.adapters.http_answers import header_value, request_never_sent, retry_after_seconds

logger = logging.getLogger(__name__)

PRODUCTION_URL = "https://apis.speedaf.com/"
UAT_URL = "https://uat-api.speedaf.com/"

CREATE_PATH = "open-api/express/order/v2/createOrder"
CANCEL_PATH = "open-api/express/order/v2/cancelOrder"
PRINT_PATH = "open-api/express/order/v2/print"
TRACK_PATH = "open-api/express/track/v2/query"
AREA_TREE_PATH = "open-api/common/area/v2/getTreeByCountryCode"

SIGNATURE_HEADER = "X-Speedaf-Signature"
TIMESTAMP_HEADER = "X-Speedaf-Timestamp"
SIGNATURE_PREFIX = "hmac-sha256="
WEBHOOK_MAX_SKEW_MS = 5 * 60 * 1000

# The general error codes of the PDF (§2.1.3, as copied by third-party clients): all are about the
# account or the request's envelope, so none is fixed by sending the same call again, except a
# stale timestamp (a fresh one is made on each call: the clock drifted, try again later).
AUTH_AND_ENVELOPE_ERRORS = {
    "70001": "request format invalid",
    "70101": "data missing",
    "70103": "decryption failed",
    "70201": "encryption failed",
    "70301": "sign missing",
    "70302": "sign invalid",
    "70401": "appCode invalid",
    "70402": "appCode disabled",
    "70501": "timestamp missing",
    "70601": "IP blacklisted",
    "70602": "IP not whitelisted",
    "70801": "interface not authorised",
}
RETRYABLE_ERRORS = {"70502"}  # timestamp expired
_ADDRESS_WORDS = re.compile(r"city|area|province|district|address|region|zone", re.IGNORECASE)
_PROBLEM_CODE = re.compile(r"^(IP\d{2})", re.IGNORECASE)

_S = State
_R = Reason
_STATUSES: dict[str, tuple[State, Reason]] = {
    # Delivery tracking (§5.2): action codes.
    "1": (_S.PICKED_UP, _R.NONE),  # 揽件, picked up
    "2": (_S.IN_TRANSIT, _R.NONE),  # 发件, sent from a site
    "3": (_S.IN_TRANSIT, _R.NONE),  # 到件, arrived at a hub
    "4": (_S.OUT_FOR_DELIVERY, _R.NONE),  # 派送中, out for delivery
    "5": (_S.DELIVERED, _R.NONE),  # 已签收, signed
    "-710": (_S.RETURNING, _R.NONE),  # 退件中, return under way
    "730": (_S.RETURNED, _R.NONE),  # 退件签收, return signed for
    # Cross-border scans (Speedaf's test script).
    "150": (_S.IN_TRANSIT, _R.NONE),  # inbound at the origin warehouse
    "181": (_S.IN_TRANSIT, _R.NONE),  # bagged
    "190": (_S.IN_TRANSIT, _R.NONE),  # outbound
    "191": (_S.IN_TRANSIT, _R.NONE),  # domestic handover done
    "220": (_S.IN_TRANSIT, _R.NONE),  # flight departed
    "230": (_S.IN_TRANSIT, _R.NONE),  # flight landed
    "360": (_S.IN_TRANSIT, _R.NONE),  # customs clearance under way
    "370": (_S.IN_TRANSIT, _R.NONE),  # customs cleared
    "375": (_S.IN_TRANSIT, _R.NONE),  # to the central warehouse
    "401": (_S.ON_HOLD, _R.OTHER),  # customs declaration / clearance problem
    # Problem shipments (§5.3, UNVERIFIED).
    "IP01": (_S.DELIVERY_FAILED, _R.UNREACHABLE),  # consignee unreachable
    "IP02": (_S.DELIVERY_FAILED, _R.WRONG_ADDRESS),  # address incomplete
    "IP03": (_S.ON_HOLD, _R.OTHER),  # address changed
    "IP04": (_S.DELIVERY_FAILED, _R.WRONG_ADDRESS),  # outside the delivery area
    "IP05": (_S.DELIVERY_FAILED, _R.REFUSED),  # refused by the consignee
    "IP06": (_S.DELIVERY_FAILED, _R.POSTPONED),  # delivery rescheduled by the consignee
    "IP07": (_S.ON_HOLD, _R.OTHER),  # missorted
    "IP08": (_S.AVAILABLE_FOR_PICKUP, _R.NONE),  # to collect at a pick-up point
    "IP09": (_S.RETURNING, _R.NONE),  # return asked by the shipper
    "IP10": (_S.DELIVERY_FAILED, _R.OTHER),  # duplicate order
    "IP11": (_S.LOST, _R.LOST),  # lost
    "IP12": (_S.ON_HOLD, _R.DAMAGED),  # damaged
    "IP13": (_S.ON_HOLD, _R.OTHER),  # waybill changed
    "IP14": (_S.ON_HOLD, _R.OTHER),  # other problem
    "IP16": (_S.ON_HOLD, _R.OTHER),  # goods paid in advance
    "5573": (_S.DELIVERY_FAILED, _R.OTHER),  # undeliverable (force majeure)
}
# Keyed as the tracking service looks codes up: folded ("IP05" → "ip05").
DEFAULT_STATUS_MAP = {fold(code): value for code, value in _STATUSES.items()}


def _parse_time(value: str, offset_hours) -> datetime | None:
    try:
        naive = datetime.strptime(value or "", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    try:
        offset = timezone(timedelta(hours=float(offset_hours)))
    except (TypeError, ValueError):
        offset = UTC
    return naive.replace(tzinfo=offset)


def raw_code_of(track: dict) -> str:
    """The code a track is mapped by: a problem code ("IP05-02" → "IP05") where ``subAction``
    carries one, else ``action``."""
    match = _PROBLEM_CODE.match(str(track.get("subAction") or ""))
    if match:
        return match.group(1).upper()
    return str(track.get("action") or "")


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"\n" + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


@register
class SpeedafAdapter:
    name: ClassVar[str] = "speedaf"
    label: ClassVar[str] = "Speedaf"
    track_batch_size: ClassVar[int] = 20
    requests_per_second: ClassVar[float] = 2.0
    supports_webhooks: ClassVar[bool] = True
    credential_names: ClassVar[tuple[str, ...]] = ("APP_CODE", "CUSTOMER_CODE", "PLATFORM_SOURCE")
    default_status_map: ClassVar[dict[str, tuple[State, Reason]]] = DEFAULT_STATUS_MAP
    country_code: ClassVar[str] = "MA"

    def __init__(
        self,
        credentials: dict[str, str],
        *,
        base_url: str | None = None,
        webhook_secret: str = "",
        timeout: float = 10.0,
    ):
        self.app_code = credentials["APP_CODE"]
        self.customer_code = credentials["CUSTOMER_CODE"]
        self.platform_source = credentials.get("PLATFORM_SOURCE", "")
        self.base_url = (base_url or PRODUCTION_URL).rstrip("/") + "/"
        self.webhook_secret = webhook_secret
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"

    # --- transport ---------------------------------------------------------------------------
    def _call(self, path: str, data, *, creating: bool = False):
        """POST ``{"data": data}`` to ``path``; the answer's ``data``, or a ``CarrierError``."""
        params = {"appCode": self.app_code, "timestamp": str(int(time.time() * 1000))}
        try:
            response = self.session.post(
                self.base_url + path, params=params, json={"data": data}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            sent = not request_never_sent(exc)
            logger.warning("speedaf %s: %s (sent=%s)", path, type(exc).__name__, sent)
            if creating and sent:
                raise CarrierError(ErrorKind.UNKNOWN, "timeout", "no answer to a create") from None
            raise CarrierError(ErrorKind.RETRYABLE, "network", type(exc).__name__) from None
        logger.info("speedaf %s: HTTP %s", path, response.status_code)
        if response.status_code == 429 or response.status_code >= 500:
            raise CarrierError(
                ErrorKind.RETRYABLE,
                str(response.status_code),
                "busy",
                retry_after=retry_after_seconds(response.headers),
            )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "success" not in answer:
            if creating and response.ok:
                raise CarrierError(ErrorKind.UNKNOWN, str(response.status_code), "unreadable answer")
            kind = ErrorKind.PERMANENT if 400 <= response.status_code < 500 else ErrorKind.RETRYABLE
            raise CarrierError(kind, str(response.status_code), "unreadable answer")
        if answer.get("success") is not True:
            raise self._error(answer.get("error"))
        data = answer.get("data")
        # Some endpoints nest a second envelope in ``data``.
        if isinstance(data, dict) and {"success", "error", "data"} <= data.keys():
            if data.get("success") is not True:
                raise self._error(data.get("error"))
            data = data.get("data")
        return data

    @staticmethod
    def _error(error) -> CarrierError:
        if isinstance(error, dict):
            code, message = str(error.get("code") or ""), str(error.get("message") or "")
        else:
            code, message = "", str(error or "")
        if code in RETRYABLE_ERRORS:
            return CarrierError(ErrorKind.RETRYABLE, code, message)
        if code in AUTH_AND_ENVELOPE_ERRORS:
            return CarrierError(ErrorKind.PERMANENT, code, message)
        if _ADDRESS_WORDS.search(message):
            return CarrierError(ErrorKind.INVALID_ADDRESS, code, message)
        return CarrierError(ErrorKind.PERMANENT, code, message)

    # --- parcels -----------------------------------------------------------------------------
    def _order(self, parcel: ParcelRequest) -> dict:
        options = parcel.options or {}
        pickup = parcel.pickup_address or {}
        weight = float(parcel.weight_kg) if parcel.weight_kg is not None else options.get("weight_kg", 0.5)
        value = parcel.declared_value if parcel.declared_value is not None else parcel.cod_amount
        goods = parcel.description or options.get("goods_name", "Goods")
        return {
            "customerCode": self.customer_code,
            "platformSource": options.get("platform_source") or self.platform_source,
            "customOrderNo": parcel.reference,
            "acceptName": parcel.recipient_name,
            "acceptMobile": parcel.phone,
            "acceptAddress": parcel.address,
            "acceptCityCode": parcel.city,
            "acceptCityName": options.get("city_name", parcel.city),
            "acceptProvinceName": options.get("province_name", ""),
            "acceptCountryCode": options.get("country_code", self.country_code),
            "sendName": pickup.get("name", ""),
            "sendMobile": pickup.get("phone", ""),
            "sendAddress": pickup.get("address", ""),
            "sendCityName": pickup.get("city", ""),
            "sendCountryCode": pickup.get("country_code", self.country_code),
            "codFee": float(parcel.cod_amount),
            "currencyType": parcel.currency,
            "goodsName": goods,
            "goodsQTY": parcel.quantity,
            "goodsWeight": weight,
            "goodsValue": float(value),
            "piece": 1,
            "isAllowOpen": int(bool(options.get("allow_open", False))),
            "parcelType": options.get("parcel_type", "PT01"),
            "deliveryType": options.get("delivery_type", "DE01"),
            "transportType": options.get("transport_type", "TT01"),
            "shipType": options.get("ship_type", "ST01"),
            "payMethod": options.get("pay_method", "PA02"),
            "itemList": [{"goodsName": goods, "goodsQTY": parcel.quantity, "goodsValue": float(value)}],
        }

    def create_parcel(self, parcel: ParcelRequest) -> ParcelCreated:
        data = self._call(CREATE_PATH, self._order(parcel), creating=True)
        if not isinstance(data, dict):
            raise CarrierError(ErrorKind.UNKNOWN, "", "create answered without a waybill")
        if data.get("success") is False:
            raise self._error({"code": data.get("code"), "message": data.get("message")})
        bill_code = str(data.get("billCode") or "")
        if not bill_code:
            raise CarrierError(ErrorKind.UNKNOWN, "", "create answered without a waybill")
        logger.info("speedaf created %s for %s", bill_code, parcel.reference)
        return ParcelCreated(
            tracking_number=bill_code,
            label_url=str(data.get("labelUrl") or ""),
            carrier_reference=str(data.get("customOrderNo") or data.get("customerOrderNo") or ""),
            raw=data,
        )

    def find_parcel(self, reference: str) -> ParcelCreated | None:
        raise CarrierError(
            ErrorKind.UNKNOWN,
            "no_lookup",
            "Speedaf's API has no known lookup by our reference: check the order in Speedaf's portal",
        )

    def cancel_parcel(self, tracking_number: str) -> None:
        data = self._call(
            CANCEL_PATH,
            [{"customerCode": self.customer_code, "billCode": tracking_number, "cancelReason": "cancelled"}],
        )
        for item in data if isinstance(data, list) else []:
            if str(item.get("billCode")) == tracking_number and item.get("success") is False:
                raise CarrierError(ErrorKind.PERMANENT, "", str(item.get("message") or "not cancelled"))

    def label_pdf(self, tracking_numbers: list[str]) -> bytes:
        data = self._call(
            PRINT_PATH, {"waybillNoList": list(tracking_numbers), "labelType": 46, "withLogo": True}
        )
        urls = [url for url in (data or {}).get("urls") or [] if url] if isinstance(data, dict) else []
        if not urls:
            raise CarrierError(ErrorKind.PERMANENT, "", "no label in the answer")
        return merge_pdfs([self._download(url) for url in urls])

    def _download(self, url: str) -> bytes:
        try:
            response = self.session.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise CarrierError(ErrorKind.RETRYABLE, "network", type(exc).__name__) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise CarrierError(
                ErrorKind.RETRYABLE,
                str(response.status_code),
                retry_after=retry_after_seconds(response.headers),
            )
        if not response.ok or not response.content.startswith(b"%PDF"):
            raise CarrierError(ErrorKind.PERMANENT, str(response.status_code), "the label is not a PDF")
        return response.content

    # --- tracking ----------------------------------------------------------------------------
    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        data = self._call(TRACK_PATH, {"mailNoList": list(tracking_numbers)})
        updates: list[TrackingUpdate] = []
        for item in data if isinstance(data, list) else []:
            mail_no = str(item.get("mailNo") or "")
            for track in item.get("tracks") or []:
                updates.append(self._update(track, mail_no))
        return updates

    @staticmethod
    def _update(track: dict, mail_no: str, event_id: str = "") -> TrackingUpdate:
        return TrackingUpdate(
            tracking_number=str(track.get("mailNo") or mail_no),
            raw_code=raw_code_of(track),
            raw_text=str(track.get("msgLoc") or track.get("msgEng") or track.get("actionName") or ""),
            occurred_at=_parse_time(track.get("time"), track.get("timezone", 0)),
            event_id=event_id,
            raw=track,
        )

    def verify_webhook(self, headers: dict, body: bytes) -> bool:
        if not self.webhook_secret:
            return False
        timestamp = header_value(headers, TIMESTAMP_HEADER).strip()
        given = header_value(headers, SIGNATURE_HEADER).strip().lower()
        if not timestamp.isdigit() or not given:
            return False
        if not given.startswith(SIGNATURE_PREFIX):
            given = SIGNATURE_PREFIX + given
        expected = webhook_signature(self.webhook_secret, timestamp, body)
        if not hmac.compare_digest(expected.encode(), given.encode()):
            return False
        return abs(time.time() * 1000 - int(timestamp)) <= WEBHOOK_MAX_SKEW_MS

    def parse_webhook(self, headers: dict, body: bytes) -> list[TrackingUpdate]:
        payload = json.loads(body or b"null")
        if not isinstance(payload, dict):
            return []
        event_id = str(payload.get("eventId") or header_value(headers, "X-Speedaf-Event-Id") or "")
        tracks = payload.get("tracks") or []
        mail_no = str(payload.get("mailNo") or "")
        return [
            self._update(track, mail_no, event_id if len(tracks) == 1 or not event_id else f"{event_id}:{i}")
            for i, track in enumerate(tracks)
        ]

    # --- cities ------------------------------------------------------------------------------
    def cities(self) -> list[City]:
        data = self._call(AREA_TREE_PATH, {"countryCode": self.country_code})
        found: list[City] = []

        def walk(nodes, province: str) -> None:
            for node in nodes or []:
                kind = str(node.get("type", ""))
                if kind == "2":
                    found.append(City(str(node.get("code") or ""), str(node.get("name") or ""), province))
                    continue
                walk(node.get("children"), str(node.get("name") or "") if kind == "1" else province)

        walk(data if isinstance(data, list) else [data] if isinstance(data, dict) else [], "")
        return found
