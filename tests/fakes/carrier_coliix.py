"""A loopback Coliix seller API for tests and the demo (see ``carriers/adapters/coliix.py`` for
what is verified and what is assumed about the wire format).

One endpoint, ``POST /casa/seller/api-parcels``, form-encoded, the ``token`` a form field and the
``action`` field choosing what to do (``add``, ``track``). Every answer is HTTP 200: errors are
``{"status": 401 | 204 | 400, "msg": "…"}``; a create answers ``status`` 200 and ``tracking``; a
track answers ``status`` true and the history in ``msg``. Its webhook is a GET (or a POST) to the
URL the merchant registered, with the secret in that URL's query.

    with FakeColiix() as fake:
        adapter = ColiixAdapter(fake.credentials, base_url=fake.endpoint, webhook_secret=fake.webhook_secret)
        fake.throttle_next(retry_after=30)
        fake.refuse_next(204, "Le compte est désactivé")
        fake.hang_next(0.5)
        fake.push_status(code, "Livré")
        hook = fake.webhook(code)  # hook.headers (with QUERY_STRING, as request.META), hook.body
"""

import itertools
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

PATH = "/casa/seller/api-parcels"
CITIES = ("Casablanca", "Rabat", "Marrakech", "Tanger", "Fès", "Agadir")
# Every status the fake can emit (the adapter's table must know each one).
STATUSES = (
    "Nouveau Colis",
    "Attente De Ramassage",
    "Ramassé",
    "Expédié",
    "Reçu",
    "Mise en distribution",
    "En cours de livraison",
    "Livré",
    "Refusé",
    "Pas de réponse",
    "Injoignable",
    "Reporté",
    "Annulé",
    "Retour en route",
    "Retourné",
)


@dataclass
class ColiixParcel:
    tracking: str
    form: dict[str, str]
    history: list[dict] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.history[-1]["status"] if self.history else ""


@dataclass(frozen=True)
class ColiixWebhook:
    """A webhook call as Livra's view would hand it over: ``headers`` holds ``QUERY_STRING`` (as
    Django's ``request.META`` does), ``body`` the form body (empty for a GET)."""

    method: str
    headers: dict[str, str]
    body: bytes

    def with_token(self, token: str) -> "ColiixWebhook":
        query = dict(parse_qsl(self.headers["QUERY_STRING"]))
        query["token"] = token
        return replace(self, headers={**self.headers, "QUERY_STRING": urlencode(query)})

    def without_token(self) -> "ColiixWebhook":
        query = dict(parse_qsl(self.headers["QUERY_STRING"]))
        query.pop("token", None)
        return replace(self, headers={**self.headers, "QUERY_STRING": urlencode(query)})


class FakeColiix(FakeServer):
    def __init__(self, token: str | None = None, webhook_secret: str | None = None):
        super().__init__()
        self.token = token or "-".join(secrets.token_hex(3) for _ in range(5))
        self.webhook_secret = webhook_secret or secrets.token_urlsafe(24)
        self.parcels: dict[str, ColiixParcel] = {}
        self._next: deque[FakeResponse | float] = deque()
        self._ids = itertools.count(1)
        self._state = threading.Lock()

    @property
    def credentials(self) -> dict[str, str]:
        return {"TOKEN": self.token}

    @property
    def endpoint(self) -> str:
        return self.base_url + PATH

    # --- what a test can ask -----------------------------------------------------------------
    def throttle_next(self, retry_after: int = 30) -> None:
        self._next.append(FakeResponse(429, "Too Many Requests", {"Retry-After": str(retry_after)}))

    def server_error_next(self, status: int = 500) -> None:
        self._next.append(FakeResponse(status, "<html>Server Error</html>", {"Content-Type": "text/html"}))

    def refuse_next(self, status: int, message: str) -> None:
        """The next call answers ``{"status": status, "msg": message}`` in HTTP 200."""
        self._next.append(FakeResponse(200, {"status": status, "msg": message}))

    def hang_next(self, seconds: float) -> None:
        """The next call is handled (a create is recorded) and answered ``seconds`` late."""
        self._next.append(float(seconds))

    def push_status(self, tracking: str, status: str, note: str = "") -> None:
        entry = {
            "code": tracking,
            "status": status,
            "etat": "Non Payé",
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        if note:
            entry["note"] = note
        self.parcels[tracking].history.append(entry)

    def webhook(
        self, tracking: str, state: str | None = None, note: str = "", *, method: str = "GET"
    ) -> ColiixWebhook:
        """The call Coliix makes to the registered URL ``…?token=<webhook_secret>``."""
        fields = {
            "code": tracking,
            "state": state or self.parcels[tracking].status,
            "datereported": time.strftime("%Y-%m-%d %H:%M:%S"),
            "note": note,
        }
        if method == "GET":
            query = urlencode({"token": self.webhook_secret, **fields})
            return ColiixWebhook("GET", {"QUERY_STRING": query}, b"")
        headers = {
            "QUERY_STRING": urlencode({"token": self.webhook_secret}),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return ColiixWebhook("POST", headers, urlencode(fields).encode())

    # --- the API -------------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.path != PATH or request.method != "POST":
            return FakeResponse(404, "<html>Page introuvable</html>", {"Content-Type": "text/html"})
        if not request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return FakeResponse(200, {"status": 400, "msg": "Requête invalide"})
        form = {key: values[-1] for key, values in request.form().items()}
        if form.get("token") != self.token:
            return FakeResponse(200, {"status": 401, "msg": "Token invalide ou expiré"})
        with self._state:
            planned = self._next.popleft() if self._next else None
        if isinstance(planned, FakeResponse):
            return planned
        action = form.get("action")
        if action == "add":
            response = self._add(form)
        elif action == "track":
            response = self._track(form.get("tracking", ""))
        else:
            response = FakeResponse(200, {"status": 400, "msg": "Action inconnue"})
        if isinstance(planned, float):
            response.delay = planned
        return response

    def _add(self, form: dict[str, str]) -> FakeResponse:
        for name in ("name", "phone", "ville", "adresse", "price"):
            if not form.get(name):
                return FakeResponse(200, {"status": 400, "msg": f"Le champ {name} est obligatoire"})
        if form["ville"] not in CITIES:
            return FakeResponse(200, {"status": 400, "msg": "Ville introuvable"})
        tracking = f"CLX{next(self._ids):08d}"
        with self._state:
            self.parcels[tracking] = ColiixParcel(tracking, form)
        self.push_status(tracking, "Attente De Ramassage")
        return FakeResponse(200, {"status": 200, "msg": "Colis ajouté avec succès", "tracking": tracking})

    def _track(self, tracking: str) -> FakeResponse:
        parcel = self.parcels.get(tracking)
        history = list(parcel.history) if parcel else []
        return FakeResponse(200, {"status": True, "msg": history, "tracking": tracking})
