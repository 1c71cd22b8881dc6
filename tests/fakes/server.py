"""A tiny threaded HTTP server on 127.0.0.1 for provider fakes.

A fake subclasses ``FakeServer`` and implements ``handle(request) -> FakeResponse``; it records
every request it got (``self.requests``) so tests can check the wire format and auth.
"""

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes | str | dict | list = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (to provoke client timeouts)


class _LoopbackHTTPServer(ThreadingHTTPServer):
    # A provider's front end does not refuse connections under load; socketserver's default
    # backlog of 5 does, and a burst of clients then sees resets that no real provider sends.
    request_queue_size = 128


class FakeServer:
    def __init__(self, port: int = 0):
        """``port``: a given one, for a test that brings a server up where a client already points."""
        self.requests: list[FakeRequest] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = FakeRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k: v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                if len(request.body) < length:
                    # The client died mid-request (a worker SIGKILLed while sending): a real
                    # provider never sees half a request as a call, so neither does a fake.
                    self.close_connection = True
                    return
                with fake._lock:
                    fake.requests.append(request)
                response = fake.handle(request)
                if response.delay:
                    threading.Event().wait(response.delay)
                body = response.body
                if isinstance(body, dict | list):
                    body = json.dumps(body).encode()
                    response.headers.setdefault("Content-Type", "application/json")
                elif isinstance(body, str):
                    body = body.encode()
                try:
                    self.send_response(response.status)
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args):  # keep test output quiet
                pass

        self._httpd = _LoopbackHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        # A short poll interval keeps each fake's shutdown (once per test) quick.
        self._thread = threading.Thread(
            target=lambda: self._httpd.serve_forever(poll_interval=0.05), daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def handle(self, request: FakeRequest) -> FakeResponse:  # pragma: no cover - overridden
        raise NotImplementedError
