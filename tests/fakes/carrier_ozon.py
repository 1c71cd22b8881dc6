"""A loopback Ozon Express API for tests and the demo (see ``carriers/adapters/ozon.py`` for what
is verified and what is assumed about the wire format).

The customer id and key are in the path, ``/customers/{id}/{key}/{action}``: a wrong pair answers
``CHECK_API: ERROR`` in HTTP 200. Actions take multipart forms (``tracking`` also a JSON body for
the bulk form); each answers its own block with ``RESULT``/``MESSAGE``, errors inside HTTP 200.
Parcels live in memory; delivery notes make a PDF of labels at ``/pdf-delivery-note-tickets-4-4``.

    with FakeOzon() as fake:
        adapter = OzonExpressAdapter(fake.credentials, base_url=fake.base_url)
        fake.throttle_next(retry_after=30)
        fake.refuse_next("Ville invalide")  # the next action's block says ERROR
        fake.hang_next(0.5)
        fake.push_status(code, "Refusé", comment="Client absent")
"""

import itertools
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP

from tests.fakes.pdf import label_pdf
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

_ACTION_PATH = re.compile(r"^/customers/(?P<id>[^/]+)/(?P<key>[^/]+)/(?P<action>[a-z-]+)$")
CITIES = {
    "37": {
        "ID": 37,
        "REF": "AGA",
        "NAME": "Agadir",
        "DELIVERED-PRICE": 35,
        "RETURNED-PRICE": 0,
        "REFUSED-PRICE": 10,
    },
    "41": {
        "ID": 41,
        "REF": "CMA",
        "NAME": "Casablanca",
        "DELIVERED-PRICE": 20,
        "RETURNED-PRICE": 0,
        "REFUSED-PRICE": 5,
    },
    "58": {
        "ID": 58,
        "REF": "RBA",
        "NAME": "Rabat",
        "DELIVERED-PRICE": 30,
        "RETURNED-PRICE": 0,
        "REFUSED-PRICE": 10,
    },
}
# Every STATUT the fake can emit (the adapter's table must know each one).
STATUSES = (
    "Nouveau Colis",
    "Attente De Ramassage",
    "Ramassé",
    "Expédié",
    "Reçu",
    "Mis en distribution",
    "En cours de livraison",
    "Livré",
    "Refusé",
    "Pas de réponse",
    "Injoignable",
    "Reporté",
    "Colis en litige",
    "Annulé",
    "Retour en cours",
    "Retourné",
)
PDF = label_pdf()
BLOCKS = {
    "add-parcel": "ADD-PARCEL",
    "parcel-info": "PARCEL-INFO",
    "tracking": "TRACKING",
    "delete-parcel": "DELETE-PARCEL",
    "add-delivery-note": "ADD-BL",
    "add-parcel-to-delivery-note": "ADD-PARCEL-BL",
    "save-delivery-note": "SAVE-BL",
}


def answer(block: str, **content) -> dict:
    return {
        "CHECK_API": {"RESULT": "SUCCESS", "MESSAGE": ""},
        block: {"RESULT": "SUCCESS", "MESSAGE": "", **content},
    }


def refused(block: str, message: str) -> dict:
    return {"CHECK_API": {"RESULT": "SUCCESS", "MESSAGE": ""}, block: {"RESULT": "ERROR", "MESSAGE": message}}


BAD_KEY = {"CHECK_API": {"RESULT": "ERROR", "MESSAGE": "Please verify your API Key"}}


def multipart_fields(request: FakeRequest) -> dict[str, str] | None:
    """The fields of a multipart/form-data body (``None`` if the body is not one)."""
    content_type = request.headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
    )
    return {
        part.get_param("name", header="content-disposition"): part.get_content()
        for part in message.iter_parts()
    }


@dataclass
class OzonParcel:
    tracking_number: str
    fields: dict[str, str]
    history: list[dict] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.history[-1]["STATUT"] if self.history else ""


class FakeOzon(FakeServer):
    def __init__(self, customer_id: str | None = None, api_key: str | None = None):
        super().__init__()
        self.customer_id = customer_id or str(secrets.randbelow(9000) + 1000)
        self.api_key = api_key or f"sk_live_{secrets.token_hex(12)}"
        self.parcels: dict[str, OzonParcel] = {}
        self.notes: dict[str, dict] = {}
        self._next: deque[FakeResponse | float | str] = deque()
        self._ids = itertools.count(1)
        self._state = threading.Lock()

    @property
    def credentials(self) -> dict[str, str]:
        return {"CUSTOMER_ID": self.customer_id, "API_KEY": self.api_key}

    # --- what a test can ask -----------------------------------------------------------------
    def throttle_next(self, retry_after: int = 30) -> None:
        self._next.append(FakeResponse(429, "Too Many Requests", {"Retry-After": str(retry_after)}))

    def server_error_next(self, status: int = 500) -> None:
        self._next.append(FakeResponse(status, "<html>Server Error</html>", {"Content-Type": "text/html"}))

    def refuse_next(self, message: str) -> None:
        """The next action answers its block with RESULT ERROR and ``message`` (HTTP 200)."""
        self._next.append(message)

    def hang_next(self, seconds: float) -> None:
        """The next call is handled (a create is recorded) and answered ``seconds`` late."""
        self._next.append(float(seconds))

    def push_status(self, tracking_number: str, statut: str, comment: str | None = None) -> None:
        now = int(time.time())
        self.parcels[tracking_number].history.append(
            {
                "STATUT": statut,
                "COMMENT": comment,
                "TIME": str(now),
                "TIME_STR": time.strftime("%Y-%m-%d %H:%M"),
            }
        )

    # --- the API -------------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.method == "GET" and request.path == "/cities":
            return FakeResponse(200, {"CITIES": CITIES, "DEBUG": None})
        if request.method == "GET" and request.path == "/pdf-delivery-note-tickets-4-4":
            note = self.notes.get(request.query.get("dn-ref", [""])[0])
            if note is None or not note["saved"]:
                return FakeResponse(404, "<html>Introuvable</html>", {"Content-Type": "text/html"})
            return FakeResponse(200, PDF, {"Content-Type": "application/pdf"})
        match = _ACTION_PATH.match(request.path)
        if match is None or request.method != "POST":
            return FakeResponse(404, "<html>Not Found</html>", {"Content-Type": "text/html"})
        if match["id"] != self.customer_id or match["key"] != self.api_key:
            return FakeResponse(200, BAD_KEY)
        action = match["action"]
        block = BLOCKS.get(action)
        if block is None:
            return FakeResponse(404, "<html>Not Found</html>", {"Content-Type": "text/html"})
        with self._state:
            planned = self._next.popleft() if self._next else None
        if isinstance(planned, FakeResponse):
            return planned
        if isinstance(planned, str):
            return FakeResponse(200, refused(block, planned))
        response = self._action(action, block, request)
        if isinstance(planned, float):
            response.delay = planned
        return response

    def _action(self, action: str, block: str, request: FakeRequest) -> FakeResponse:
        if action == "tracking" and request.headers.get("Content-Type", "").startswith("application/json"):
            return self._tracking(request.json().get("tracking-number") or [])
        fields = multipart_fields(request)
        if fields is None:
            form = request.form() if request.body else {}
            fields = {key: values[-1] for key, values in form.items()}
        if action == "add-parcel":
            return self._add(fields)
        if action == "tracking":
            return self._tracking([fields.get("tracking-number", "")])
        if action == "parcel-info":
            parcel = self.parcels.get(fields.get("tracking-number", ""))
            if parcel is None:
                return FakeResponse(200, refused(block, "Colis introuvable"))
            return FakeResponse(200, answer(block, INFOS={"TRACKING-NUMBER": parcel.tracking_number}))
        if action == "delete-parcel":
            return self._delete(fields.get("tracking-number", ""))
        if action == "add-delivery-note":
            ref = f"BL-{next(self._ids)}"
            self.notes[ref] = {"codes": [], "saved": False}
            return FakeResponse(200, answer(block, **{"NEW-BL": {"REF": ref, "ID": len(self.notes)}}))
        note = self.notes.get(fields.get("Ref", ""))
        if note is None:
            return FakeResponse(200, refused(block, "Bon de livraison introuvable"))
        if action == "add-parcel-to-delivery-note":
            codes = [value for key, value in sorted(fields.items()) if key.startswith("Codes[")]
            if not codes or any(code not in self.parcels for code in codes):
                return FakeResponse(200, refused(block, "Colis introuvable"))
            note["codes"].extend(codes)
            return FakeResponse(200, answer(block))
        note["saved"] = True  # save-delivery-note
        return FakeResponse(200, answer(block))

    def _add(self, fields: dict[str, str]) -> FakeResponse:
        for name in ("parcel-receiver", "parcel-phone", "parcel-city", "parcel-address", "parcel-price"):
            if not fields.get(name):
                return FakeResponse(200, refused("ADD-PARCEL", f"Champ {name} obligatoire"))
        city = CITIES.get(fields["parcel-city"])
        if city is None:
            return FakeResponse(200, refused("ADD-PARCEL", "Ville invalide"))
        if fields.get("products"):
            json.loads(fields["products"])  # a malformed list would be a 500 at Ozon too
        number = f"OZ{next(self._ids):09d}"
        with self._state:
            self.parcels[number] = OzonParcel(number, fields)
        self.push_status(number, "Nouveau Colis")
        new = {
            "TRACKING-NUMBER": number,
            "RECEIVER": fields["parcel-receiver"],
            "PHONE": fields["parcel-phone"],
            "CITY_ID": fields["parcel-city"],
            "CITY_NAME": city["NAME"],
            "ADDRESS": fields["parcel-address"],
            "PRICE": fields["parcel-price"],
            "DELIVERED-PRICE": str(city["DELIVERED-PRICE"]),
            "RETURNED-PRICE": str(city["RETURNED-PRICE"]),
            "REFUSED-PRICE": str(city["REFUSED-PRICE"]),
        }
        return FakeResponse(200, answer("ADD-PARCEL", MESSAGE="Colis ajouté", **{"NEW-PARCEL": new}))

    def _tracking_of(self, number: str) -> dict:
        parcel = self.parcels.get(number)
        if parcel is None:
            return {"RESULT": "ERROR", "MESSAGE": "Colis introuvable"}
        return {
            "RESULT": "SUCCESS",
            "TRACKING-NUMBER": number,
            "LAST_TRACKING": parcel.history[-1],
            "HISTORY": {str(i): entry for i, entry in enumerate(parcel.history, 1)},
        }

    def _tracking(self, numbers: list[str]) -> FakeResponse:
        if len(numbers) == 1:
            single = self._tracking_of(numbers[0])
            if single["RESULT"] == "ERROR":
                return FakeResponse(200, refused("TRACKING", single["MESSAGE"]))
            return FakeResponse(200, {"CHECK_API": {"RESULT": "SUCCESS"}, "TRACKING": single})
        return FakeResponse(
            200, {"CHECK_API": {"RESULT": "SUCCESS"}, "TRACKING": {n: self._tracking_of(n) for n in numbers}}
        )

    def _delete(self, number: str) -> FakeResponse:
        parcel = self.parcels.get(number)
        if parcel is None:
            return FakeResponse(200, refused("DELETE-PARCEL", "Colis introuvable"))
        if parcel.status not in ("Nouveau Colis", "Attente De Ramassage"):
            return FakeResponse(200, refused("DELETE-PARCEL", "Colis déjà ramassé"))
        self.push_status(number, "Annulé")
        return FakeResponse(200, answer("DELETE-PARCEL"))
