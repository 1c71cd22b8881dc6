"""Aramex: the Shipping Services API (``ShippingAPI.V2``), JSON flavour of its WCF services.

Sources: ``../shared/reference/carriers.md`` §3 (Aramex rows): ClientInfo in each call
(``KC/plugins/aramex/karrio/mappers/aramex/proxy.py`` and ``providers/aramex/tracking.py``, Karrio
community, LGPL: shape only), ``…/json/CreateShipments`` with ``LabelInfo`` (#4651494596),
``…/json/PrintLabel`` (#29172243311), the push ``{Key, Value{UpdateCode}}`` (#6919726181). Karrio's
tests give the error shape (``HasErrors`` + ``Notifications[{Code, Message}]``, ``ERR01``
"ClientInfo - Invalid username or password") and ``NonExistingWaybills``.

Auth scheme. No header: every JSON body carries ``ClientInfo`` {UserName, Password, Version,
AccountNumber, AccountPin, AccountEntity, AccountCountryCode, Source}. Errors come inside HTTP 200
as ``HasErrors: true`` with ``Notifications``, per call and per shipment: they are read as errors.

Endpoints used (base ``https://ws.aramex.net/ShippingAPI.V2``, test ``https://ws.dev.aramex.net/
ShippingAPI.V2``): ``/Shipping/Service_1_0.svc/json/CreateShipments``,
``/Shipping/Service_1_0.svc/json/PrintLabel``, ``/Tracking/Service_1_0.svc/json/TrackShipments``,
``/Location/Service_1_0.svc/json/FetchCities`` (#4651494596).

Rate limits: none documented; ``requests_per_second`` is our own polite pace; a 429 or a 5xx from
the front end is read as RETRYABLE with ``Retry-After`` where sent.

VERIFIED (reference): the ClientInfo fields; the endpoint paths; errors as HasErrors +
Notifications in HTTP 200; ERR01 for bad credentials; the tracking result shape (``Key`` = waybill,
``Value`` = updates with ``UpdateCode``, ``UpdateDescription``, ``UpdateDateTime``,
``UpdateLocation``); the push body ``{Key, Value{UpdateCode}}``.

UNVERIFIED (reference: "every UpdateCode (SH005 = delivered in #6919726181 only)"):
- The UpdateCode table. SH005 delivered is the reference's; the other SH codes come from merchant
  code in public repositories that disagree in places (SH069 "returned" in most, "to be returned"
  in one). Karrio's ``units.py`` only maps codes to incident *reasons* (REFUSED/REF/REJECT,
  NOTHOME/NH, BADADDR, DMG, LOST, HOLD, CUSTOMS…), matched against UpdateCode; the states we give
  them are our choice. Anything else is stored unmapped for an operator, never guessed.
- The push's authentication: Aramex documents none. We expect the shared secret the account
  manager configures as ``Authorization: Bearer <webhook_secret>`` and compare it in constant
  time; treat a push as a trigger (poll confirms). The push date format (WCF ``/Date(ms+zzzz)/``
  or ISO): both are read.
- No lookup by our reference and no shipment cancel in the Shipping API as known to us:
  ``find_parcel`` raises UNKNOWN (a person checks the account), ``cancel_parcel`` raises PERMANENT
  (an Aramex shipment not handed over is not collected; ask Aramex to void it).
- ``ProductGroup`` DOM / ``ProductType`` CDS for a domestic COD parcel, ``Services`` "CODS",
  ``LabelInfo`` ReportID 9201 (account options may override), and the track batch size (50).
- Business error codes other than ERR01 are read by their wording (city/address → INVALID_ADDRESS).
"""

import base64
import hmac
import json
import logging
import re
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

PRODUCTION_URL = "https://ws.aramex.net/ShippingAPI.V2"
TEST_URL = "https://ws.dev.aramex.net/ShippingAPI.V2"

CREATE_PATH = "/Shipping/Service_1_0.svc/json/CreateShipments"
PRINT_PATH = "/Shipping/Service_1_0.svc/json/PrintLabel"
TRACK_PATH = "/Tracking/Service_1_0.svc/json/TrackShipments"
CITIES_PATH = "/Location/Service_1_0.svc/json/FetchCities"

API_VERSION = "v1.0"
SOURCE = 24
LABEL_REPORT_ID = 9201
AUTH_ERRORS = {"ERR01"}  # ClientInfo - Invalid username or password
_ADDRESS_WORDS = re.compile(r"city|address|country|postcode|zip|state|province", re.IGNORECASE)
_WCF_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")

_S = State
_R = Reason
_STATUSES: dict[str, tuple[State, Reason]] = {
    # UpdateCodes (merchant code in the wild; SH005 per the reference).
    "SH014": (_S.INFO_RECEIVED, _R.NONE),  # record created (draft)
    "SH005": (_S.DELIVERED, _R.NONE),
    "SH006": (_S.DELIVERED, _R.NONE),  # collected by the consignee
    "SH007": (_S.DELIVERED, _R.NONE),
    "SH154": (_S.DELIVERED, _R.NONE),
    "SH234": (_S.DELIVERED, _R.NONE),
    "SH496": (_S.DELIVERED, _R.NONE),
    "SH534": (_S.DELIVERED, _R.NONE),
    "SH597": (_S.DELIVERED, _R.NONE),
    "SH239": (_S.DELIVERED, _R.NONE),  # COD paid
    "SH069": (_S.RETURNED, _R.NONE),  # returned to shipper
    "SH071": (_S.RETURNING, _R.NONE),
    "SH247": (_S.RETURNING, _R.NONE),
    "SH474": (_S.RETURNING, _R.NONE),
    "SH495": (_S.RETURNING, _R.NONE),
    # Incident codes Karrio matches against UpdateCode (reasons theirs, states ours).
    "REFUSED": (_S.DELIVERY_FAILED, _R.REFUSED),
    "REF": (_S.DELIVERY_FAILED, _R.REFUSED),
    "REJECT": (_S.DELIVERY_FAILED, _R.REFUSED),
    "NOTHOME": (_S.DELIVERY_FAILED, _R.UNREACHABLE),
    "NH": (_S.DELIVERY_FAILED, _R.UNREACHABLE),
    "NOT_HOME": (_S.DELIVERY_FAILED, _R.UNREACHABLE),
    "CLOSED": (_S.DELIVERY_FAILED, _R.UNREACHABLE),
    "BUSINESS_CLOSED": (_S.DELIVERY_FAILED, _R.UNREACHABLE),
    "BADADDR": (_S.DELIVERY_FAILED, _R.WRONG_ADDRESS),
    "INCORRECT": (_S.DELIVERY_FAILED, _R.WRONG_ADDRESS),
    "WRONG_ADDRESS": (_S.DELIVERY_FAILED, _R.WRONG_ADDRESS),
    "NOACCESS": (_S.DELIVERY_FAILED, _R.OTHER),
    "RESTRICTED": (_S.DELIVERY_FAILED, _R.OTHER),
    "UNDELIVERABLE": (_S.DELIVERY_FAILED, _R.OTHER),
    "UNABLE": (_S.DELIVERY_FAILED, _R.OTHER),
    "DMG": (_S.ON_HOLD, _R.DAMAGED),
    "DAMAGE": (_S.ON_HOLD, _R.DAMAGED),
    "DAMAGED": (_S.ON_HOLD, _R.DAMAGED),
    "LOST": (_S.LOST, _R.LOST),
    "MISROUTE": (_S.ON_HOLD, _R.OTHER),
    "DELAY": (_S.IN_TRANSIT, _R.NONE),
    "VEHICLE": (_S.IN_TRANSIT, _R.NONE),
    "WEATHER": (_S.IN_TRANSIT, _R.NONE),
    "HOLD": (_S.ON_HOLD, _R.OTHER),
    "ONHOLD": (_S.ON_HOLD, _R.OTHER),
    "HELD": (_S.ON_HOLD, _R.OTHER),
    "CUSTOMS": (_S.ON_HOLD, _R.OTHER),
    "CUSTOMSHOLD": (_S.ON_HOLD, _R.OTHER),
    "CUSTOMS_DELAY": (_S.ON_HOLD, _R.OTHER),
    "CUSTOMSDOC": (_S.ON_HOLD, _R.OTHER),
    "CUSTOMS_DOCUMENTS": (_S.ON_HOLD, _R.OTHER),
    "CUSTOMS_UNPAID": (_S.ON_HOLD, _R.OTHER),
    "DUTIES": (_S.ON_HOLD, _R.OTHER),
}
# Keyed as the tracking service looks codes up: folded ("SH005" → "sh005").
DEFAULT_STATUS_MAP = {fold(code): value for code, value in _STATUSES.items()}


def wcf_date(moment: datetime) -> str:
    """A datetime as WCF's JSON serializer writes it: ``/Date(<ms since epoch>)/``."""
    return f"/Date({int(moment.timestamp() * 1000)})/"


def parse_date(value) -> datetime | None:
    """``/Date(1700000000000+0300)/`` (UTC ms; the offset is the local zone) or ISO 8601."""
    if not value:
        return None
    match = _WCF_DATE.search(str(value))
    if match:
        moment = datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
        if match.group(2):
            sign = -1 if match.group(2)[0] == "-" else 1
            hours, minutes = int(match.group(2)[1:3]), int(match.group(2)[3:5])
            moment = moment.astimezone(timezone(sign * timedelta(hours=hours, minutes=minutes)))
        return moment
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _notifications_error(notifications) -> CarrierError:
    items = [n for n in notifications or [] if isinstance(n, dict)]
    codes = [str(n.get("Code") or "") for n in items]
    text = "; ".join(str(n.get("Message") or "") for n in items) or "HasErrors"
    code = next((c for c in codes if c), "")
    if any(c in AUTH_ERRORS for c in codes):
        return CarrierError(ErrorKind.PERMANENT, code, text)
    if _ADDRESS_WORDS.search(text):
        return CarrierError(ErrorKind.INVALID_ADDRESS, code, text)
    return CarrierError(ErrorKind.PERMANENT, code, text)


@register
class AramexAdapter:
    name: ClassVar[str] = "aramex"
    label: ClassVar[str] = "Aramex"
    track_batch_size: ClassVar[int] = 50
    requests_per_second: ClassVar[float] = 1.0
    supports_webhooks: ClassVar[bool] = True
    # The public tracking page customers are sent to (UNVERIFIED: as the carrier's site shows it).
    tracking_url_template: ClassVar[str] = "https://www.aramex.com/track/results?ShipmentNumber={number}"
    credential_names: ClassVar[tuple[str, ...]] = (
        "USERNAME",
        "PASSWORD",
        "ACCOUNT_NUMBER",
        "ACCOUNT_PIN",
        "ACCOUNT_ENTITY",
        "ACCOUNT_COUNTRY_CODE",
    )
    default_status_map: ClassVar[dict[str, tuple[State, Reason]]] = DEFAULT_STATUS_MAP

    def __init__(
        self,
        credentials: dict[str, str],
        *,
        base_url: str | None = None,
        webhook_secret: str = "",
        timeout: float = 10.0,
    ):
        self.client_info = {
            "UserName": credentials["USERNAME"],
            "Password": credentials["PASSWORD"],
            "Version": API_VERSION,
            "AccountNumber": credentials["ACCOUNT_NUMBER"],
            "AccountPin": credentials["ACCOUNT_PIN"],
            "AccountEntity": credentials["ACCOUNT_ENTITY"],
            "AccountCountryCode": credentials["ACCOUNT_COUNTRY_CODE"],
            "Source": SOURCE,
        }
        self.country_code = credentials["ACCOUNT_COUNTRY_CODE"]
        self.base_url = (base_url or PRODUCTION_URL).rstrip("/")
        self.webhook_secret = webhook_secret
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"

    def __repr__(self) -> str:  # never the ClientInfo
        return f"<AramexAdapter account={self.client_info['AccountNumber']}>"

    # --- transport ---------------------------------------------------------------------------
    def _call(self, path: str, body: dict, *, creating: bool = False, reference: str = "") -> dict:
        payload = {
            "ClientInfo": self.client_info,
            **body,
            "Transaction": {f"Reference{n}": "" for n in range(1, 6)} | {"Reference1": reference},
        }
        try:
            response = self.session.post(self.base_url + path, json=payload, timeout=self.timeout)
        except requests.RequestException as exc:
            sent = not request_never_sent(exc)
            logger.warning("aramex %s: %s (sent=%s)", path, type(exc).__name__, sent)
            if creating and sent:
                raise CarrierError(ErrorKind.UNKNOWN, "timeout", "no answer to a create") from None
            raise CarrierError(ErrorKind.RETRYABLE, "network", type(exc).__name__) from None
        logger.info("aramex %s: HTTP %s", path, response.status_code)
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
        if not isinstance(answer, dict) or "HasErrors" not in answer:
            if creating and response.ok:
                raise CarrierError(ErrorKind.UNKNOWN, str(response.status_code), "unreadable answer")
            kind = ErrorKind.PERMANENT if 400 <= response.status_code < 500 else ErrorKind.RETRYABLE
            raise CarrierError(kind, str(response.status_code), "unreadable answer")
        return answer

    # --- parcels -----------------------------------------------------------------------------
    def _party(self, address: dict, *, name: str, phone: str, city: str, account: bool) -> dict:
        party = {
            "Reference1": "",
            "AccountNumber": self.client_info["AccountNumber"] if account else "",
            "PartyAddress": {
                "Line1": address.get("address", ""),
                "Line2": "",
                "City": city,
                "PostCode": address.get("post_code", ""),
                "CountryCode": address.get("country_code", self.country_code),
            },
            "Contact": {
                "PersonName": name,
                "CompanyName": address.get("company", name),
                "PhoneNumber1": phone,
                "CellPhone": phone,
                "EmailAddress": address.get("email", ""),
            },
        }
        return party

    def _shipment(self, parcel: ParcelRequest) -> dict:
        options = parcel.options or {}
        pickup = parcel.pickup_address or {}
        weight = float(parcel.weight_kg) if parcel.weight_kg is not None else options.get("weight_kg", 0.5)
        cod = parcel.cod_amount > 0
        details = {
            "ActualWeight": {"Unit": "KG", "Value": weight},
            "ChargeableWeight": None,
            "DescriptionOfGoods": parcel.description or options.get("goods_name", "Goods"),
            "GoodsOriginCountry": pickup.get("country_code", self.country_code),
            "NumberOfPieces": 1,
            "ProductGroup": options.get("product_group", "DOM"),
            "ProductType": options.get("product_type", "CDS"),
            "PaymentType": options.get("payment_type", "P"),
            "Services": "CODS" if cod else "",
            "CashOnDeliveryAmount": (
                {"CurrencyCode": parcel.currency, "Value": float(parcel.cod_amount)} if cod else None
            ),
        }
        if parcel.declared_value is not None:
            details["CustomsValueAmount"] = {
                "CurrencyCode": parcel.currency,
                "Value": float(parcel.declared_value),
            }
        return {
            "Reference1": parcel.reference,
            "Reference2": "",
            "Reference3": "",
            "Shipper": self._party(
                pickup,
                name=pickup.get("name", ""),
                phone=pickup.get("phone", ""),
                city=pickup.get("city", ""),
                account=True,
            ),
            "Consignee": self._party(
                {"address": parcel.address, "country_code": options.get("country_code", self.country_code)},
                name=parcel.recipient_name,
                phone=parcel.phone,
                city=parcel.city,
                account=False,
            ),
            "ShippingDateTime": wcf_date(datetime.now(UTC)),
            "DueDate": wcf_date(datetime.now(UTC) + timedelta(days=1)),
            "Comments": "",
            "PickupLocation": "",
            "Details": details,
            "Attachments": [],
        }

    def create_parcel(self, parcel: ParcelRequest) -> ParcelCreated:
        answer = self._call(
            CREATE_PATH,
            {
                "LabelInfo": {
                    "ReportID": (parcel.options or {}).get("label_report_id", LABEL_REPORT_ID),
                    "ReportType": "URL",
                },
                "Shipments": [self._shipment(parcel)],
            },
            creating=True,
            reference=parcel.reference,
        )
        shipments = answer.get("Shipments") or []
        shipment = shipments[0] if shipments and isinstance(shipments[0], dict) else {}
        if shipment.get("HasErrors"):
            raise _notifications_error(shipment.get("Notifications"))
        if answer.get("HasErrors"):
            raise _notifications_error(answer.get("Notifications"))
        number = str(shipment.get("ID") or "")
        if not number:
            raise CarrierError(ErrorKind.UNKNOWN, "", "create answered without a waybill")
        logger.info("aramex created %s for %s", number, parcel.reference)
        return ParcelCreated(
            tracking_number=number,
            label_url=str((shipment.get("ShipmentLabel") or {}).get("LabelURL") or ""),
            carrier_reference=str(shipment.get("Reference1") or ""),
            raw=shipment,
        )

    def find_parcel(self, reference: str) -> ParcelCreated | None:
        raise CarrierError(
            ErrorKind.UNKNOWN,
            "no_lookup",
            "Aramex's Shipping API has no known lookup by our reference: check the account's shipments",
        )

    def cancel_parcel(self, tracking_number: str) -> None:
        raise CarrierError(
            ErrorKind.PERMANENT,
            "no_cancel",
            "no shipment cancel in Aramex's Shipping API: keep the parcel, ask Aramex to void it",
        )

    def label_pdf(self, tracking_numbers: list[str]) -> bytes:
        return merge_pdfs([self._label(number) for number in tracking_numbers])

    def _label(self, number: str) -> bytes:
        answer = self._call(
            PRINT_PATH,
            {
                "ShipmentNumber": number,
                "ProductGroup": "DOM",
                "OriginEntity": self.client_info["AccountEntity"],
                "LabelInfo": {"ReportID": LABEL_REPORT_ID, "ReportType": "URL"},
            },
        )
        if answer.get("HasErrors"):
            raise _notifications_error(answer.get("Notifications"))
        label = answer.get("ShipmentLabel") or {}
        contents = label.get("LabelFileContents")
        if isinstance(contents, list) and contents:
            return self._pdf(bytes(contents))
        if isinstance(contents, str) and contents:
            return self._pdf(base64.b64decode(contents))
        if label.get("LabelURL"):
            return self._download(label["LabelURL"])
        raise CarrierError(ErrorKind.PERMANENT, "", "no label in the answer")

    @staticmethod
    def _pdf(content: bytes) -> bytes:
        if not content.startswith(b"%PDF"):
            raise CarrierError(ErrorKind.PERMANENT, "", "the label is not a PDF")
        return content

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
        if not response.ok:
            raise CarrierError(ErrorKind.PERMANENT, str(response.status_code), "label download refused")
        return self._pdf(response.content)

    # --- tracking ----------------------------------------------------------------------------
    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        answer = self._call(
            TRACK_PATH, {"Shipments": list(tracking_numbers), "GetLastTrackingUpdateOnly": False}
        )
        if answer.get("HasErrors"):
            raise _notifications_error(answer.get("Notifications"))
        missing = answer.get("NonExistingWaybills") or []
        if missing:
            logger.info("aramex track: %d waybill(s) unknown to Aramex", len(missing))
        updates: list[TrackingUpdate] = []
        for result in answer.get("TrackingResults") or []:
            updates.extend(self._updates(result))
        return updates

    @staticmethod
    def _updates(result: dict) -> list[TrackingUpdate]:
        key = str(result.get("Key") or "")
        values = result.get("Value")
        values = [values] if isinstance(values, dict) else values or []
        return [
            TrackingUpdate(
                tracking_number=str(value.get("WaybillNumber") or key),
                raw_code=str(value.get("UpdateCode") or ""),
                raw_text=" — ".join(
                    part for part in (value.get("UpdateDescription"), value.get("Comments")) if part
                ),
                occurred_at=parse_date(value.get("UpdateDateTime")),
                location=str(value.get("UpdateLocation") or ""),
                raw=value,
            )
            for value in values
            if isinstance(value, dict)
        ]

    def verify_webhook(self, headers: dict, body: bytes) -> bool:
        if not self.webhook_secret:
            return False
        given = header_value(headers, "Authorization").strip()
        if given.lower().startswith("bearer "):
            given = given[7:].strip()
        return hmac.compare_digest(given.encode(), self.webhook_secret.encode())

    def parse_webhook(self, headers: dict, body: bytes) -> list[TrackingUpdate]:
        payload = json.loads(body or b"null")
        results = payload if isinstance(payload, list) else [payload]
        updates: list[TrackingUpdate] = []
        for result in results:
            if isinstance(result, dict):
                updates.extend(self._updates(result))
        return updates

    # --- cities ------------------------------------------------------------------------------
    def cities(self) -> list[City]:
        answer = self._call(
            CITIES_PATH, {"CountryCode": self.country_code, "State": "", "NameStartsWith": ""}
        )
        if answer.get("HasErrors"):
            raise _notifications_error(answer.get("Notifications"))
        return [
            City(carrier_city_id=str(name), name=str(name)) for name in answer.get("Cities") or [] if name
        ]
