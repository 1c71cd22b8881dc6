"""A loopback Aramex Shipping Services API (``ShippingAPI.V2``, JSON endpoints) for tests and the demo.

Wire format (see ``carriers/adapters/aramex.py`` for sources and what is UNVERIFIED): JSON POSTs to
``/ShippingAPI.V2/<Service>/Service_1_0.svc/json/<Operation>``, each body carrying ``ClientInfo``;
answers are HTTP 200 with ``HasErrors`` and ``Notifications[{Code, Message}]`` — bad credentials are
``ERR01`` "ClientInfo - Invalid username or password", inside HTTP 200, as Karrio's fixtures show.
The codes this fake uses for a city it does not know or a missing phone (``ERR06``, ``ERR12``) are
illustrative. Dates are WCF's ``/Date(ms+zzzz)/``. A body that is not JSON gets WCF's HTML 400; a
gateway in front answers 429 with ``Retry-After`` or 5xx.

    with FakeAramex() as fake:
        adapter = AramexAdapter(fake.credentials(), base_url=fake.base_url, webhook_secret=fake.webhook_token)
        fake.push(waybill, "SH005")  # delivered, seen by the next TrackShipments
        request = fake.webhook(waybill, "SH069")  # a push {Key, Value{...}}: request.headers, request.body
        fake.fail_next("ERR99", "Internal error")  # the next call: HasErrors inside HTTP 200
        fake.throttle_next(retry_after=30)
        fake.delay_next(0.5)  # serve the next call (a create does create), answer 0.5 s late
"""

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from tests.fakes.pdf import label_pdf
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

PREFIX = "/ShippingAPI.V2"

# Every UpdateCode this fake can report, with the wording it reports it in.
UPDATE_CODES = {
    "SH014": "Record created",
    "SH005": "Delivered",
    "SH006": "Collected by consignee",
    "SH007": "Delivered",
    "SH154": "Delivered",
    "SH234": "Delivered",
    "SH496": "Delivered",
    "SH534": "Delivered",
    "SH597": "Delivered",
    "SH239": "COD amount paid",
    "SH069": "Returned to shipper",
    "SH071": "Return to shipper in progress",
    "SH247": "To be returned to shipper",
    "SH474": "To be returned to shipper",
    "SH495": "To be returned to shipper",
    "REFUSED": "Consignee refused the shipment",
    "NOTHOME": "Consignee not available",
    "BADADDR": "Incorrect address",
    "DAMAGED": "Shipment damaged",
    "LOST": "Shipment lost",
    "HOLD": "Shipment on hold",
    "CUSTOMS": "Held by customs",
}
CITIES = ["Casablanca", "Rabat", "Marrakech", "Tanger", "Fès"]


def minimal_pdf(text: str = "label") -> bytes:
    return label_pdf(text)


def wcf_now(offset: str = "+0100") -> str:
    return f"/Date({int(time.time() * 1000)}{offset})/"


def notification(code: str, message: str) -> dict:
    return {"Code": code, "Message": message}


def answer(notifications: list[dict] | None = None, **fields) -> dict:
    return {
        "Transaction": {
            "Reference1": "",
            "Reference2": "",
            "Reference3": "",
            "Reference4": "",
            "Reference5": "",
        },
        "Notifications": notifications or [],
        "HasErrors": bool(notifications),
        **fields,
    }


@dataclass
class AramexShipment:
    number: str
    shipment: dict
    updates: list[dict] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return self.shipment.get("Reference1", "")


@dataclass(frozen=True)
class AramexPush:
    headers: dict[str, str]
    body: bytes


class FakeAramex(FakeServer):
    def __init__(self):
        super().__init__()
        self.username = "testingapi@example.com"
        self.password = secrets.token_hex(8)
        self.account_number = "20016"
        self.account_pin = "331421"
        self.account_entity = "CMN"
        self.account_country_code = "MA"
        self.webhook_token = secrets.token_hex(12)
        self.shipments: dict[str, AramexShipment] = {}
        self._next: deque[FakeResponse | float] = deque()
        self._state = threading.Lock()
        self._seq = 0

    @property
    def base_url(self) -> str:
        return super().base_url + PREFIX

    # --- setting up ------------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        return {
            "USERNAME": self.username,
            "PASSWORD": self.password,
            "ACCOUNT_NUMBER": self.account_number,
            "ACCOUNT_PIN": self.account_pin,
            "ACCOUNT_ENTITY": self.account_entity,
            "ACCOUNT_COUNTRY_CODE": self.account_country_code,
        }

    def fail_next(self, code: str, message: str = "error") -> None:
        """The next call answers HasErrors with this notification, inside HTTP 200."""
        with self._state:
            self._next.append(FakeResponse(200, answer([notification(code, message)])))

    def throttle_next(self, retry_after: int | str = 30) -> None:
        with self._state:
            self._next.append(FakeResponse(429, "Too Many Requests", {"Retry-After": str(retry_after)}))

    def server_error_next(self, status: int = 500) -> None:
        with self._state:
            self._next.append(
                FakeResponse(status, "<html>Service Unavailable</html>", {"Content-Type": "text/html"})
            )

    def delay_next(self, seconds: float) -> None:
        with self._state:
            self._next.append(seconds)

    def push(self, number: str, code: str, *, comments: str = "", location: str = "Casablanca") -> dict:
        if code not in UPDATE_CODES:
            raise ValueError(f"UpdateCode this fake does not know: {code}")
        update = {
            "WaybillNumber": number,
            "UpdateCode": code,
            "UpdateDescription": UPDATE_CODES[code],
            "UpdateDateTime": wcf_now(),
            "UpdateLocation": location,
            "Comments": comments,
            "ProblemCode": "",
            "GrossWeight": "0.5",
            "ChargeableWeight": "0.5",
            "WeightUnit": "KG",
        }
        with self._state:
            self.shipments[number].updates.append(update)
        return update

    def webhook(self, number: str, code: str, token: str | None = None) -> AramexPush:
        """A push as #6919726181 reads it (``{Key, Value{UpdateCode…}}``), with the shared secret
        as a bearer token (our assumption: Aramex documents no signing)."""
        update = self.push(number, code)
        body = json.dumps({"Key": number, "Value": update}).encode()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.webhook_token if token is None else token}",
        }
        return AramexPush(headers, body)

    def by_reference(self, reference: str) -> AramexShipment | None:
        return next((s for s in self.shipments.values() if s.reference == reference), None)

    # --- serving ---------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.method == "GET" and request.path.startswith(PREFIX + "/labels/"):
            return FakeResponse(200, minimal_pdf(request.path), {"Content-Type": "application/pdf"})
        with self._state:
            planned = self._next.popleft() if self._next else None
        if isinstance(planned, FakeResponse):
            return planned
        response = self._serve(request)
        if isinstance(planned, float | int):
            response.delay = float(planned)
        return response

    def _serve(self, request: FakeRequest) -> FakeResponse:
        routes = {
            PREFIX + "/Shipping/Service_1_0.svc/json/CreateShipments": self._create,
            PREFIX + "/Shipping/Service_1_0.svc/json/PrintLabel": self._print,
            PREFIX + "/Tracking/Service_1_0.svc/json/TrackShipments": self._track,
            PREFIX + "/Location/Service_1_0.svc/json/FetchCities": self._cities,
        }
        route = routes.get(request.path)
        if request.method != "POST" or route is None:
            return FakeResponse(404, "<html>Endpoint not found.</html>", {"Content-Type": "text/html"})
        try:
            body = request.json()
        except ValueError:
            return FakeResponse(400, "<html>Request Error</html>", {"Content-Type": "text/html"})
        if not isinstance(body, dict) or not self._authenticated(body.get("ClientInfo") or {}):
            return FakeResponse(
                200, answer([notification("ERR01", "ClientInfo - Invalid username or password")])
            )
        return FakeResponse(200, route(body))

    def _authenticated(self, info: dict) -> bool:
        return (
            info.get("UserName") == self.username
            and info.get("Password") == self.password
            and info.get("AccountNumber") == self.account_number
            and info.get("AccountPin") == self.account_pin
            and info.get("AccountEntity") == self.account_entity
            and info.get("AccountCountryCode") == self.account_country_code
            and bool(info.get("Version"))
        )

    def _create(self, body: dict) -> dict:
        if not (body.get("LabelInfo") or {}).get("ReportID"):
            return answer([notification("ERR03", "LabelInfo.ReportID - Report ID is required")])
        results, failed = [], False
        for shipment in body.get("Shipments") or []:
            problems = self._problems(shipment)
            if problems:
                failed = True
                results.append(
                    {
                        "ID": None,
                        "Reference1": shipment.get("Reference1"),
                        "HasErrors": True,
                        "Notifications": problems,
                    }
                )
                continue
            with self._state:
                self._seq += 1
                number = f"{46_000_000_000 + self._seq}"
                self.shipments[number] = AramexShipment(number, shipment)
            results.append(
                {
                    "ID": number,
                    "Reference1": shipment.get("Reference1"),
                    "Reference2": "",
                    "Reference3": "",
                    "ForeignHAWB": "",
                    "HasErrors": False,
                    "Notifications": [],
                    "ShipmentLabel": {
                        "LabelURL": f"{self.base_url}/labels/{number}.pdf",
                        "LabelFileContents": None,
                    },
                    "ShipmentDetails": {"Origin": self.account_entity, "Destination": "CMN"},
                }
            )
        if not results:
            return answer([notification("ERR04", "Shipments - At least one shipment is required")])
        return answer(
            [notification("ERR00", "Shipment(s) with errors")] if failed else None, Shipments=results
        )

    @staticmethod
    def _problems(shipment: dict) -> list[dict]:
        consignee = shipment.get("Consignee") or {}
        address = consignee.get("PartyAddress") or {}
        contact = consignee.get("Contact") or {}
        details = shipment.get("Details") or {}
        problems = []
        if address.get("City", "").casefold() not in {c.casefold() for c in CITIES}:
            problems.append(notification("ERR06", "Consignee.PartyAddress.City - Invalid city name"))
        if not contact.get("CellPhone"):
            problems.append(notification("ERR12", "Consignee.Contact.CellPhone - Cell phone is required"))
        if not contact.get("PersonName"):
            problems.append(notification("ERR13", "Consignee.Contact.PersonName - Person name is required"))
        if "CODS" in (details.get("Services") or "") and not (details.get("CashOnDeliveryAmount") or {}).get(
            "Value"
        ):
            problems.append(notification("ERR27", "Details.CashOnDeliveryAmount - COD amount is required"))
        return problems

    def _print(self, body: dict) -> dict:
        number = str(body.get("ShipmentNumber") or "")
        if number not in self.shipments:
            return answer([notification("ERR52", f"ShipmentNumber - Shipment {number} not found")])
        return answer(
            ShipmentNumber=number,
            ShipmentLabel={"LabelURL": f"{self.base_url}/labels/{number}.pdf", "LabelFileContents": None},
        )

    def _track(self, body: dict) -> dict:
        results, missing = [], []
        for number in body.get("Shipments") or []:
            shipment = self.shipments.get(number)
            if shipment is None:
                missing.append(number)
            elif shipment.updates:
                updates = list(reversed(shipment.updates))  # newest first, as Aramex lists them
                if body.get("GetLastTrackingUpdateOnly"):
                    updates = updates[:1]
                results.append({"Key": number, "Value": updates})
        return answer(TrackingResults=results, NonExistingWaybills=missing)

    def _cities(self, body: dict) -> dict:
        if body.get("CountryCode") != self.account_country_code:
            return answer(Cities=[])
        start = (body.get("NameStartsWith") or "").casefold()
        return answer(Cities=[c for c in CITIES if c.casefold().startswith(start)])
