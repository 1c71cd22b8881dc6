"""A loopback Twilio Programmable Messaging API (SMS and WhatsApp) for tests, the demo and the bench.

It speaks the wire format of providers.md §1: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``
with HTTP Basic auth (Account SID + Auth Token, or an API key) and a form body; it answers 201 with
a message resource, or Twilio's legacy error body ``{"code", "message", "more_info", "status"}``.
It signs the webhooks Twilio would send (status callbacks and inbound messages) with
``X-Twilio-Signature``, exactly as ``RequestValidator.compute_signature`` does.

    with FakeTwilio() as fake:
        for name, value in fake.env("LIVRA_TWILIO").items():
            monkeypatch.setenv(name, value)
        fake.fail_for("+212612345678", 21211)  # that number is invalid from now on
        fake.throttle_next(retry_after=120)  # the next call gets a 429
        fake.answer_after(0.05, 0.2)  # every accepted call is answered 50–200 ms after it arrived
        fake.storm(seconds=3, retry_after=2)  # for 3 s from the next call, most get a 429 or a 5xx
        ...
        fake.callback(fake.sent[0].sid, "delivered").post_with(client)  # Django test client
        fake.callback(sid, "delivered").deliver()  # or a real POST (live_server)
"""

import base64
import json
import random
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, replace
from email.utils import format_datetime
from urllib.parse import urlencode, urlsplit

from django.utils import timezone
from twilio.request_validator import RequestValidator

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer

API_VERSION = "2010-04-01"
_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_CONTENT_SID = re.compile(r"^HX[0-9a-f]{32}$")
WHATSAPP = "whatsapp:"

# Error texts as Twilio words them ({to} is the recipient), with the HTTP status each comes with.
ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21608: (400, "The number {to} is unverified. Trial accounts cannot send messages to unverified numbers."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    21635: (400, "'To' number cannot be a landline"),
    21655: (400, "The ContentSid is Invalid."),
    21656: (400, "The ContentVariables Parameter is invalid."),
    21910: (400, "Invalid From and To pair. From and To should be of the same channel"),
    30003: (400, "Unreachable destination handset"),
    30006: (400, "Landline or unreachable carrier"),
    63014: (400, "Message could not be delivered because the user has blocked messages from this sender"),
    63016: (
        400,
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template.",
    ),
    63018: (429, "Rate limit exceeded for Channel"),
    14107: (429, "Message rate limit exceeded"),
}


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def error_body(code: int, status: int | None = None, to: str = "", message: str | None = None) -> dict:
    """Twilio's legacy error body (what twilio-python turns into TwilioRestException)."""
    default_status, text = ERRORS.get(code, (400, "Error"))
    return {
        "code": code,
        "message": message or text.format(to=to),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status or default_status,
    }


@dataclass
class TwilioFailure:
    code: int
    status: int
    message: str | None = None
    retry_after: str | None = None  # the Retry-After header, as sent

    def response(self, to: str) -> FakeResponse:
        headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
        return FakeResponse(self.status, error_body(self.code, self.status, to, self.message), headers)


def livra_message_id(form: dict[str, str]) -> int | None:
    """Livra's own message id, which rides in the StatusCallback URL it gives each message."""
    callback = form.get("StatusCallback", "")
    _, found, value = callback.partition("message_id=")
    return int(value.split("&")[0]) if found else None


@dataclass(frozen=True)
class CreateCall:
    """A create call as the fake saw it: when it arrived (time.time()), Livra's message id, and
    what it was answered (HTTP status, the Retry-After it was told to honour)."""

    at: float
    message_id: int | None
    status: int
    retry_after: float | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 201


# A storm's answers in turn: four in five calls fail, half of those with a 429 and a Retry-After.
STORM_ROUND = ("throttle", "server_error", "throttle", "unavailable", "accept")


@dataclass
class SentTwilioMessage:
    """A message the fake accepted (a hung call included: Twilio got it, the client did not hear)."""

    sid: str
    form: dict[str, str]
    auth_username: str
    resource: dict

    @property
    def to(self) -> str:
        return self.form.get("To", "")

    @property
    def channel(self) -> str:
        return "whatsapp" if self.to.startswith(WHATSAPP) else "sms"

    @property
    def status_callback(self) -> str:
        return self.form.get("StatusCallback", "")

    @property
    def message_id(self) -> int | None:
        return livra_message_id(self.form)


@dataclass(frozen=True)
class SignedTwilioRequest:
    """A webhook as Twilio would send it: form parameters, the URL it calls and its signature."""

    url: str
    params: dict[str, str]
    signature: str

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @property
    def body(self) -> str:
        return urlencode(self.params)

    def post_with(self, client):
        """POST it through Django's test client (the URL's path; the host is LIVRA_PUBLIC_URL's)."""
        return client.post(
            self.path,
            data=self.body,
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": self.signature},
        )

    def deliver(self, timeout: float = 10) -> int:
        """POST it over HTTP to ``url`` (a live server on loopback); returns the status code."""
        request = urllib.request.Request(  # noqa: S310 - tests call loopback URLs only
            self.url,
            data=self.body.encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": self.signature,
                "User-Agent": "TwilioProxy/1.1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def tampered(self, **params: str) -> "SignedTwilioRequest":
        """The same signature over changed parameters (what a forger would send)."""
        return replace(self, params={**self.params, **params})

    def with_signature(self, signature: str) -> "SignedTwilioRequest":
        return replace(self, signature=signature)


@dataclass
class _Hang:
    seconds: float


class FakeTwilio(FakeServer):
    def __init__(self, account_sid: str | None = None, auth_token: str | None = None):
        super().__init__()
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.api_keys: dict[str, str] = {}
        self.sent: list[SentTwilioMessage] = []
        self._next: deque[TwilioFailure | _Hang] = deque()
        self._for_recipient: dict[str, TwilioFailure] = {}
        self._release = threading.Event()
        self._state = threading.Lock()
        self.calls: list[CreateCall] = []  # every create call that got past authentication
        self._latency: tuple[float, float] | None = None
        self._storm_seconds = 0.0
        self._storm_until: float | None = 0.0
        self._storm_retry_after = 0
        self._storm_calls = 0

    # --- setting up ------------------------------------------------------------------------
    def env(self, prefix: str = "LIVRA_TWILIO") -> dict[str, str]:
        """The environment variables an adapter needs to talk to this fake."""
        return {
            f"{prefix}_ACCOUNT_SID": self.account_sid,
            f"{prefix}_AUTH_TOKEN": self.auth_token,
            f"{prefix}_BASE_URL": self.base_url,
        }

    def api_key(self) -> tuple[str, str]:
        """A new API key (SID, secret) the fake accepts for Basic auth, as Twilio recommends."""
        sid, secret = new_sid("SK"), secrets.token_hex(16)
        self.api_keys[sid] = secret
        return sid, secret

    def fail_next(
        self, code: int, status: int | None = None, *, message: str | None = None, retry_after=None
    ) -> None:
        """The next create call fails with Twilio error ``code`` (HTTP status from ``ERRORS``)."""
        status = status or ERRORS.get(code, (400, ""))[0]
        retry_after = None if retry_after is None else str(retry_after)
        with self._state:
            self._next.append(TwilioFailure(code, status, message, retry_after))

    def fail_for(self, to: str, code: int, status: int | None = None, *, message: str | None = None) -> None:
        """Every create call to ``to`` (E.164, with or without ``whatsapp:``) fails with ``code``."""
        status = status or ERRORS.get(code, (400, ""))[0]
        with self._state:
            self._for_recipient[to.removeprefix(WHATSAPP)] = TwilioFailure(code, status, message)

    def throttle_next(self, retry_after: int | str = 30) -> None:
        self.fail_next(20429, 429, retry_after=retry_after)

    def server_error_next(self, status: int = 500) -> None:
        self.fail_next(20500, status)

    def hang_next(self, seconds: float = 30) -> None:
        """Accept the next message but answer only after ``seconds`` (or ``release()``/``stop()``)."""
        with self._state:
            self._release.clear()
            self._next.append(_Hang(seconds))

    def answer_after(self, low: float, high: float) -> None:
        """Answer every accepted call after a delay drawn between ``low`` and ``high`` seconds (the
        message is accepted when the call arrives: a client that dies meanwhile has still sent it)."""
        self._latency = (low, high)

    def storm(self, seconds: float, retry_after: int = 2) -> None:
        """For ``seconds`` from the next create call on, four calls in five fail in turn: 429 with
        ``Retry-After: retry_after``, 500, 429 again, 503; the fifth is accepted. Then all is well."""
        with self._state:
            self._storm_seconds = seconds
            self._storm_until = None  # set by the first call
            self._storm_retry_after = retry_after
            self._storm_calls = 0

    def release(self) -> None:
        self._release.set()

    def accept_all(self) -> None:
        with self._state:
            self._next.clear()
            self._for_recipient.clear()

    def stop(self) -> None:
        self.release()
        super().stop()

    # --- what Twilio sends back --------------------------------------------------------------
    def sign(self, url: str, params: dict[str, str]) -> SignedTwilioRequest:
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        return SignedTwilioRequest(url, dict(params), signature)

    def callback(
        self,
        sid: str,
        status: str,
        *,
        error_code: int | str | None = None,
        error_message: str | None = None,
        url: str | None = None,
    ) -> SignedTwilioRequest:
        """The status callback Twilio posts to the message's StatusCallback URL."""
        message = self.message(sid)
        form = message.form if message else {}
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": form.get("From", ""),
            "To": form.get("To", ""),
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
        }
        if form.get("MessagingServiceSid"):
            params["MessagingServiceSid"] = form["MessagingServiceSid"]
        if message and message.channel == "whatsapp":
            params["ChannelPrefix"] = "whatsapp"
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
            params["ErrorMessage"] = error_message or ERRORS.get(int(error_code), (0, ""))[1].format(to="")
        target = url or (message.status_callback if message else "")
        if not target:
            raise ValueError(f"no StatusCallback URL known for {sid}; pass url=")
        return self.sign(target, params)

    def inbound(
        self,
        url: str,
        from_: str,
        body: str = "",
        *,
        to: str = "+15005550006",
        button_payload: str | None = None,
        button_text: str | None = None,
        replied_to_sid: str | None = None,
        opt_out_type: str | None = None,
        sid: str | None = None,
    ) -> SignedTwilioRequest:
        """An incoming SMS or WhatsApp message (``from_="whatsapp:+212…"``) posted to ``url``."""
        sid = sid or new_sid("SM")
        whatsapp = from_.startswith(WHATSAPP)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "From": from_,
            "To": f"{WHATSAPP}{to.removeprefix(WHATSAPP)}" if whatsapp else to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
        }
        if whatsapp:
            params["ProfileName"] = "Client"
            params["WaId"] = from_.removeprefix(WHATSAPP).lstrip("+")
            params["MessageType"] = "button" if button_payload else "text"
        if button_payload is not None:
            params["ButtonPayload"] = button_payload
            params["ButtonText"] = button_text or body
        if replied_to_sid is not None:
            params["OriginalRepliedMessageSid"] = replied_to_sid
        if opt_out_type is not None:
            params["OptOutType"] = opt_out_type
        return self.sign(url, params)

    # --- looking back --------------------------------------------------------------------------
    def message(self, sid: str) -> SentTwilioMessage | None:
        return next((m for m in self.sent if m.sid == sid), None)

    def sent_to(self, to: str) -> list[SentTwilioMessage]:
        return [m for m in self.sent if m.to.removeprefix(WHATSAPP) == to.removeprefix(WHATSAPP)]

    @property
    def create_calls(self) -> list[FakeRequest]:
        return [r for r in self.requests if r.method == "POST" and _MESSAGES_PATH.match(r.path)]

    def calls_by_message_id(self) -> dict[int | None, list[CreateCall]]:
        """Each Livra message's create calls, in the order they arrived."""
        with self._state:
            calls = list(self.calls)
        by_id: dict[int | None, list[CreateCall]] = {}
        for call in sorted(calls, key=lambda call: call.at):
            by_id.setdefault(call.message_id, []).append(call)
        return by_id

    # --- the API -------------------------------------------------------------------------------
    def handle(self, request: FakeRequest) -> FakeResponse:
        match = _MESSAGES_PATH.match(request.path)
        if request.method != "POST" or match is None:
            return FakeResponse(404, error_body(20404))
        username = self._authenticated(request.headers.get("Authorization", ""))
        if username is None or match["account"] != self.account_sid:
            body = error_body(20003)
            body["detail"] = "Your AccountSid or AuthToken was incorrect."
            return FakeResponse(401, body, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if not request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return FakeResponse(400, error_body(21602))  # Twilio reads no parameter from other bodies
        form = {name: values[-1] for name, values in request.form().items()}
        arrived = time.time()
        response = self._create(form, username)
        retry_after = response.headers.get("Retry-After")
        call = CreateCall(
            arrived, livra_message_id(form), response.status, retry_after and float(retry_after)
        )
        with self._state:
            self.calls.append(call)
        return response

    def _create(self, form: dict[str, str], username: str) -> FakeResponse:
        to = form.get("To", "")
        with self._state:
            planned = self._next.popleft() if self._next else None
            failure = planned if isinstance(planned, TwilioFailure) else None
            failure = failure or self._for_recipient.get(to.removeprefix(WHATSAPP)) or self._storm_failure()
        if failure is not None:
            return failure.response(to)
        invalid = self._invalid(form)
        if invalid is not None:
            return FakeResponse(400, error_body(invalid, to=to))
        sid = new_sid("SM")
        resource = self._resource(sid, form)
        with self._state:
            self.sent.append(SentTwilioMessage(sid, form, username, resource))
        if isinstance(planned, _Hang):
            self._release.wait(planned.seconds)
        delay = random.uniform(*self._latency) if self._latency else 0.0
        return FakeResponse(201, resource, delay=delay)

    def _storm_failure(self) -> TwilioFailure | None:
        """The storm's answer to this call, if one is raging (the caller holds ``_state``)."""
        if self._storm_until is None:
            self._storm_until = time.time() + self._storm_seconds
        if time.time() >= self._storm_until:
            return None
        turn = STORM_ROUND[self._storm_calls % len(STORM_ROUND)]
        self._storm_calls += 1
        if turn == "throttle":
            return TwilioFailure(20429, 429, retry_after=str(self._storm_retry_after))
        if turn == "server_error":
            return TwilioFailure(20500, 500)
        if turn == "unavailable":
            return TwilioFailure(20503, 503, "Service Unavailable")
        return None

    def _authenticated(self, header: str) -> str | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        expected = self.auth_token if username == self.account_sid else self.api_keys.get(username)
        return username if expected is not None and password == expected else None

    @staticmethod
    def _invalid(form: dict[str, str]) -> int | None:
        to, sender = form.get("To", ""), form.get("From", "")
        if not to:
            return 21604
        if not sender and not form.get("MessagingServiceSid"):
            return 21603
        if not _E164.match(to.removeprefix(WHATSAPP)):
            return 21211
        if sender and to.startswith(WHATSAPP) != sender.startswith(WHATSAPP):
            return 21910
        if not form.get("Body") and not form.get("ContentSid") and not form.get("MediaUrl"):
            return 21602
        if form.get("ContentSid") and not _CONTENT_SID.match(form["ContentSid"]):
            return 21655
        if form.get("ContentVariables"):
            try:
                variables = json.loads(form["ContentVariables"])
            except ValueError:
                return 21656
            if not isinstance(variables, dict):
                return 21656
        return None

    def _resource(self, sid: str, form: dict[str, str]) -> dict:
        now = format_datetime(timezone.now(), usegmt=True)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        service = form.get("MessagingServiceSid")
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From") or None,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            # A Messaging Service answers "accepted", a plain number "queued" (providers.md §1.2).
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": form.get("To", ""),
            "uri": uri,
        }
