"""A loopback SendGrid v3: Mail Send and the signed Event Webhook.

``POST /v3/mail/send`` checks the Bearer key and the body's shape the way SendGrid does, answers
``202`` with an ``X-Message-Id`` header, or fails the next call in a documented way
(``fail_next(bad_request(...))``, ``rate_limited(...)``, ``server_error()``, ``slow(...)``).
It also plays the Event Webhook: ``event(...)`` builds an event shaped like SendGrid's for a mail
it accepted, and ``signed(events)`` signs a batch with its own P-256 key (``public_key`` is that key
in the base64 SubjectPublicKeyInfo form SendGrid shows under Mail Settings).
"""

import base64
import json
import re
import secrets
import time
from collections import deque

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
# SendGrid's own check is stricter; this is enough to refuse what is plainly not an address.
ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def error_body(message: str, field: str | None = None, help_anchor: str = "") -> dict:
    """SendGrid's error envelope: {"errors": [{"message", "field", "help"}], "id"}."""
    return {
        "errors": [
            {"message": message, "field": field, "help": f"{HELP}#{help_anchor}" if help_anchor else None}
        ],
        "id": secrets.token_hex(16),
    }


def bad_request(message: str, field: str | None = None, help_anchor: str = "") -> FakeResponse:
    return FakeResponse(400, error_body(message, field, help_anchor))


def rate_limited(reset_at: float, limit: int = 600) -> FakeResponse:
    return FakeResponse(
        429,
        {"errors": [{"field": None, "message": "too many requests"}]},
        {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(reset_at)),
        },
    )


def server_error(status: int = 500) -> FakeResponse:
    return FakeResponse(status, {"errors": [{"field": None, "message": "internal server error"}]})


def slow(seconds: float) -> FakeResponse:
    """Accepts the mail, but answers only after ``seconds`` (to outlast a client's timeout)."""
    return FakeResponse(202, b"", {"X-Message-Id": _x_message_id()}, delay=seconds)


def _x_message_id() -> str:
    return secrets.token_urlsafe(16)[:22]


class FakeSendGrid(FakeServer):
    def __init__(self, api_key: str = "SG.fake-key.for-tests"):
        super().__init__()
        self.api_key = api_key
        self.failures: deque[FakeResponse] = deque()
        # X-Message-Id → the Mail Send body SendGrid accepted under it.
        self.accepted: dict[str, dict] = {}
        self._signing_key = ec.generate_private_key(ec.SECP256R1())

    # --- Mail Send --------------------------------------------------------------------------
    def fail_next(self, response: FakeResponse) -> None:
        self.failures.append(response)

    @property
    def mail_sends(self) -> list[FakeRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v3/mail/send"]

    def handle(self, request: FakeRequest) -> FakeResponse:
        if request.method != "POST" or request.path != "/v3/mail/send":
            return FakeResponse(404, error_body("not found"))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return FakeResponse(
                401, error_body("The provided authorization grant is invalid, expired, or revoked")
            )
        if request.headers.get("Content-Type") != "application/json":
            return FakeResponse(415, error_body("Content-Type should be application/json."))
        try:
            mail = request.json()
        except ValueError:
            return bad_request("Bad Request", None, "message.body")
        problem = self.shape_problem(mail)
        if problem is not None:
            return problem
        if self.failures:
            response = self.failures.popleft()
            if response.status == 202:
                self.accepted[response.headers["X-Message-Id"]] = mail
            return response
        x_message_id = _x_message_id()
        self.accepted[x_message_id] = mail
        return FakeResponse(202, b"", {"X-Message-Id": x_message_id})

    @staticmethod
    def shape_problem(mail) -> FakeResponse | None:
        """What SendGrid answers 400 for, among the things an adapter could get wrong."""
        if not isinstance(mail, dict):
            return bad_request("Bad Request", None, "message.body")
        personalizations = mail.get("personalizations")
        if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= 1000:
            return bad_request(
                "The personalizations field is required and must have at least one personalization.",
                "personalizations",
                "message.personalizations",
            )
        for p, personalization in enumerate(personalizations):
            to = personalization.get("to")
            if not isinstance(to, list) or not to:
                return bad_request(
                    "The to array is required for all personalization objects, and must have at least "
                    "one email object with a valid email address.",
                    f"personalizations.{p}.to",
                    "message.personalizations.to",
                )
            for t, recipient in enumerate(to):
                if not ADDRESS.match(str(recipient.get("email", ""))):
                    return bad_request(
                        "Does not contain a valid address.",
                        f"personalizations.{p}.to.{t}.email",
                        "message.personalizations.to",
                    )
            custom_args = personalization.get("custom_args", {})
            if any(not isinstance(value, str) for value in custom_args.values()):
                return bad_request(
                    "Custom args must be strings.", f"personalizations.{p}.custom_args", "message.custom_args"
                )
        sender = mail.get("from")
        if not isinstance(sender, dict) or not ADDRESS.match(str(sender.get("email", ""))):
            return bad_request(
                "The from object must be provided for every email send. It is an object that requires "
                "the email parameter, but may also contain a name parameter.",
                "from",
                "message.from",
            )
        if mail.get("template_id"):
            return None  # the template brings its own subject and content
        if not mail.get("subject") and not all(p.get("subject") for p in personalizations):
            return bad_request(
                "The subject is required. You can get around this requirement if you use a template "
                "with a subject defined or if every personalization has a subject defined.",
                "subject",
                "message.subject",
            )
        content = mail.get("content")
        if not isinstance(content, list) or not content or not all(c.get("value") for c in content):
            return bad_request(
                "Unless a valid template_id is provided, the content parameter is required. There must "
                "be at least one defined content block. We typically suggest both text/plain and "
                "text/html blocks are included, but only one block is required.",
                "content",
                "message.content",
            )
        return None

    # --- Event Webhook ----------------------------------------------------------------------
    @property
    def public_key(self) -> str:
        """The verification key as SendGrid shows it: base64 DER SubjectPublicKeyInfo, no PEM lines."""
        der = self._signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def event(
        self,
        name: str,
        x_message_id: str,
        *,
        custom_args: bool = True,
        timestamp: int | None = None,
        **fields,
    ) -> dict:
        """An event for the first recipient of the mail accepted as ``x_message_id``, as SendGrid
        posts it: its custom_args merged in as top-level keys."""
        mail = self.accepted[x_message_id]
        personalization = mail["personalizations"][0]
        event = {
            "email": personalization["to"][0]["email"],
            "timestamp": timestamp or int(time.time()),
            "smtp-id": f"<{x_message_id}@ismtpd0001p1lon1.sendgrid.net>",
            "event": name,
            "sg_event_id": secrets.token_urlsafe(16),
            # Each recipient's id starts with the request's X-Message-Id.
            "sg_message_id": f"{x_message_id}.filterdrecv-5645d9c87f-l7c6h-1-5F5A1B2C-8.0",
        }
        if custom_args:
            event.update(personalization.get("custom_args", {}))
        event.update(fields)
        return event

    def signed(self, events: list[dict], *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """The request body and signature headers SendGrid would post for ``events``."""
        body = json.dumps(events).encode()
        stamp = str(timestamp or int(time.time()))
        return body, {SIGNATURE_HEADER: self.sign(stamp, body), TIMESTAMP_HEADER: stamp}

    def sign(self, timestamp: str, body: bytes) -> str:
        signature = self._signing_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()  # DER-encoded (r, s), base64
