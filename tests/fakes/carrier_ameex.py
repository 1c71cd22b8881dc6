"""A loopback Ameex API for tests and the demo (see ``carriers/adapters/ameex.py`` for what is
verified and what is assumed about the wire format).

It checks the ``C-Api-Id`` / ``C-Api-Key`` headers (wrong → ``{"login": "error"}`` in HTTP 200,
before routing, as Ameex does), reads form bodies, answers refusals inside HTTP 200
(``api.type = "error"``), keeps parcels in memory with their history, serves a PDF label, and
signs webhooks (HMAC-SHA256 over ``timestamp + "." + body``).

    with FakeAmeex() as fake:
        adapter = AmeexAdapter(fake.credentials, base_url=fake.base_url, webhook_secret=fake.webhook_secret)
        fake.throttle_next(retry_after=30)  # the next call gets a 429 with Retry-After
        fake.refuse_next("Veuillez choisir l'expéditeur")  # an error inside HTTP 200
        fake.hang_next(0.5)  # the next call is handled, then answered 0.5 s late
        fake.push_status(code, "Livré", comment="Remis au client")
        hook = fake.webhook(code)  # hook.headers, hook.body
"""

import hashlib
import hmac
import itertools
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode

from tests.fakes.pdf import label_pdf
from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

CITIES = {"1": "Casablanca", "2": "Rabat", "3": "Marrakech", "4": "Tanger"}
# Every statut_name the fake can emit (the adapter's table must know each one).
STATUSES = (
    "Nouveau colis",
    "Attente de ramassage",
    "Ramassé",
    "Expédié",
    "Reçu",
    "Mis en distribution",
    "En cours de livraison",
    "Livré",
    "Refusé",
    "Pas de réponse",
    "Injoignable",
    "Numéro erroné",
    "Adresse erronée",
    "Reporté",
    "Annulé",
    "Retour en cours",
    "Retourné",
    "Perdu",
    "Endommagé",
)
PDF = label_pdf()


def ok(api: dict) -> dict:
    return {"login": "success", "api": {"type": "success", **api}}


def refused(message: str) -> dict:
    return {"login": "success", "api": {"type": "error", "msg": message}}


LOGIN_ERROR = {"login": "error", "api": None}


@dataclass
class AmeexParcel:
    code: str
    form: dict[str, str]
    history: list[dict] = field(default_factory=list)

    @property
    def order_num(self) -> str:
        return self.form.get("order_num", "")

    @property
    def status(self) -> str:
        return self.history[-1]["statut_name"] if self.history else ""


@dataclass(frozen=True)
class SignedAmeexWebhook:
    headers: dict[str, str]
    body: bytes

    def tampered(self, **fields: str) -> "SignedAmeexWebhook":
        form = dict(parse_qsl(self.body.decode()))
        form.update(fields)
        return replace(self, body=urlencode(form).encode())


class FakeAmeex(FakeServer):
    def __init__(
        self, api_id: str | None = None, api_key: str | None = None, webhook_secret: str | None = None
    ):
        super().__init__()
        self.api_id = api_id or str(secrets.randbelow(9000) + 1000)
        self.api_key = api_key or secrets.token_hex(16)
        self.webhook_secret = webhook_secret or secrets.token_hex(16)
        self.parcels: dict[str, AmeexParcel] = {}
        self.notes: dict[str, list[str]] = {}
        self._next: deque[FakeResponse | float] = deque()
        self._ids = itertools.count(1)
        self._state = threading.Lock()

    @property
    def credentials(self) -> dict[str, str]:
        return {"API_ID": self.api_id, "API_KEY": self.api_key}

    # --- what a test can ask -----------------------------------------------------------------
    def throttle_next(self, retry_after: int = 30) -> None:
        self._next.append(
            FakeResponse(429, {"message": "Too Many Requests"}, {"Retry-After": str(retry_after)})
        )

    def server_error_next(self, status: int = 500) -> None:
        self._next.append(FakeResponse(status, "<html>Server Error</html>", {"Content-Type": "text/html"}))

    def refuse_next(self, message: str) -> None:
        self._next.append(FakeResponse(200, refused(message)))

    def hang_next(self, seconds: float) -> None:
        """The next call is handled (a create is recorded) and answered ``seconds`` late."""
        self._next.append(seconds)

    def push_status(self, code: str, statut_name: str, comment: str = "") -> None:
        parcel = self.parcels[code]
        parcel.history.append(
            {
                "statut_name": statut_name,
                "comment": comment,
                "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )

    def by_order_num(self, order_num: str) -> AmeexParcel | None:
        return next((p for p in self.parcels.values() if p.order_num == order_num), None)

    def webhook(
        self, code: str, statut_name: str | None = None, comment: str = "", *, timestamp: int | None = None
    ) -> SignedAmeexWebhook:
        """The form POST Ameex would send for ``code`` (its latest status unless given)."""
        form = {
            "code": code,
            "statut_name": statut_name or self.parcels[code].status,
            "comment": comment,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        body = urlencode(form).encode()
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        signature = hmac.new(
            self.webhook_secret.encode(), stamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Ameex-Timestamp": stamp,
            "X-Ameex-Signature": signature,
        }
        return SignedAmeexWebhook(headers, body)

    # --- the API -------------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.headers.get("C-Api-Id") != self.api_id or request.headers.get("C-Api-Key") != self.api_key:
            return FakeResponse(200, LOGIN_ERROR)  # before routing, as Ameex
        with self._state:
            planned = self._next.popleft() if self._next else None
        if isinstance(planned, FakeResponse):
            return planned
        response = self._route(request)
        if isinstance(planned, float | int):
            response.delay = float(planned)
        return response

    def _route(self, request: FakeRequest) -> FakeResponse:
        form = {key: values[-1] for key, values in request.form().items()} if request.body else {}
        query = {key: values[-1] for key, values in request.query.items()}
        routes = {
            ("POST", "/customer/Delivery/Parcels/Action/Type/Add"): lambda: self._add(form),
            ("POST", "/customer/Delivery/Parcels/Json"): lambda: self._list(form),
            ("GET", "/customer/Delivery/Parcels/Action/Type/Delete"): lambda: self._delete(query),
            ("POST", "/customer/Delivery/Parcels/MassTracking"): lambda: self._mass_tracking(form),
            ("GET", "/customer/Delivery/Cities"): self._cities,
            ("GET", "/customer/Delivery/Parcels/Statuts"): lambda: FakeResponse(
                200, ok({"data": [{"id": i, "name": s} for i, s in enumerate(STATUSES, 1)]})
            ),
            ("POST", "/customer/Delivery/DeliveryNotes/Action/Type/Add"): self._note_add,
            ("POST", "/customer/Delivery/DeliveryNotes/Action/Type/AddParcels"): lambda: self._note_fill(
                query, form
            ),
            ("GET", "/customer/Delivery/DeliveryNotes/Print/Type/Labels"): lambda: self._labels(query),
        }
        route = routes.get((request.method, request.path))
        if route is None:
            return FakeResponse(200, refused("Action introuvable"))
        form_body = request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        if request.method == "POST" and request.body and not form_body:
            return FakeResponse(200, refused("Données invalides"))
        return route()

    def _add(self, form: dict[str, str]) -> FakeResponse:
        for name in ("receiver", "phone", "city", "address", "cod"):
            if not form.get(name):
                return FakeResponse(200, refused(f"Le champ {name} est obligatoire"))
        if form["city"] not in CITIES:
            return FakeResponse(200, refused("Ville introuvable"))
        code = f"AMX{next(self._ids):06d}MA"
        parcel = AmeexParcel(code, form)
        with self._state:
            self.parcels[code] = parcel
        self.push_status(code, "Nouveau colis")
        return FakeResponse(200, ok({"msg": "Colis ajouté avec succès", "data": {"code": code}}))

    def _list(self, form: dict[str, str]) -> FakeResponse:
        search = form.get("search[value]", "")
        rows = [
            {"code": p.code, "order_num": p.order_num, "statut": p.status}
            for p in self.parcels.values()
            if search in p.order_num or search in p.code
        ]
        start, length = int(form.get("start", 0)), int(form.get("length", 25))
        return FakeResponse(200, ok({"recordsTotal": len(rows), "data": rows[start : start + length]}))

    def _delete(self, query: dict[str, str]) -> FakeResponse:
        parcel = self.parcels.get(query.get("ParcelCode", ""))
        if parcel is None:
            return FakeResponse(200, refused("Colis introuvable"))
        if parcel.status not in ("Nouveau colis", "Attente de ramassage"):
            return FakeResponse(200, refused("Ce colis ne peut plus être supprimé"))
        self.push_status(parcel.code, "Annulé")
        return FakeResponse(200, ok({"msg": "Colis supprimé"}))

    def _mass_tracking(self, form: dict[str, str]) -> FakeResponse:
        codes = [code for code in form.get("codes", "").split(",") if code]
        if len(codes) > 25:
            return FakeResponse(200, refused("25 colis au maximum"))
        data = {
            code: {str(i): entry for i, entry in enumerate(self.parcels[code].history, 1)}
            for code in codes
            if code in self.parcels
        }
        return FakeResponse(200, ok({"data": data}))

    def _cities(self) -> FakeResponse:
        return FakeResponse(
            200, ok({"cities": {cid: {"id": int(cid), "name": name} for cid, name in CITIES.items()}})
        )

    def _note_add(self) -> FakeResponse:
        ref = f"BL-{next(self._ids):05d}"
        self.notes[ref] = []
        return FakeResponse(200, ok({"msg": f"Bon de livraison créé Ref : {ref}", "data": {"ref": ref}}))

    def _note_fill(self, query: dict[str, str], form: dict[str, str]) -> FakeResponse:
        ref = query.get("Ref", "")
        if ref not in self.notes:
            return FakeResponse(200, refused("Bon de livraison introuvable"))
        codes = [code for code in form.get("codes", "").split(",") if code]
        unknown = [code for code in codes if code not in self.parcels]
        if unknown:
            return FakeResponse(200, refused("Colis introuvable"))
        self.notes[ref].extend(codes)
        return FakeResponse(200, ok({"msg": "Colis ajoutés"}))

    def _labels(self, query: dict[str, str]) -> FakeResponse:
        ref = query.get("Ref", "")
        if ref not in self.notes and ref not in self.parcels:
            return FakeResponse(200, refused("Référence introuvable"))
        return FakeResponse(200, PDF, {"Content-Type": "application/pdf"})
