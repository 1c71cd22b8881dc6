"""A minimal SMTP server on 127.0.0.1 (the RFC 5321 subset smtplib uses), for the SMTP provider.

It records every message it accepts (``messages``), checks ``AUTH PLAIN`` credentials when given
some, and can refuse recipients (``refuse(address, code, text)``), answer the end of DATA with an
error (``data_reply``) or go silent after DATA (``data_reply_delay``) to provoke a client timeout.
"""

import base64
import contextlib
import socketserver
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage


@dataclass
class ReceivedMail:
    sender: str  # MAIL FROM
    recipients: list[str]  # RCPT TO, accepted ones
    message: EmailMessage  # parsed DATA

    @property
    def text(self) -> str:
        return self.message.get_content()


def _address(argument: str) -> str:
    """``FROM:<a@b> SIZE=123`` → ``a@b``."""
    value = argument.split(":", 1)[1].strip() if ":" in argument else argument
    value = value.split(" ", 1)[0]
    return value.strip("<>")


class FakeSMTPServer:
    def __init__(self, username: str = "", password: str = "", hostname: str = "fake-smtp.test"):
        self.username, self.password, self.hostname = username, password, hostname
        self.messages: list[ReceivedMail] = []
        self.logins: list[tuple[str, str]] = []
        self.refused: dict[str, tuple[int, str]] = {}
        self.data_reply: tuple[int, str] = (250, "2.0.0 Ok: queued")
        self.data_reply_delay = 0.0
        self._lock = threading.Lock()
        fake = self

        class Session(socketserver.StreamRequestHandler):
            def reply(self, code: int, text: str, *more: str) -> None:
                lines = [text, *more]
                for line in lines[:-1]:
                    self.wfile.write(f"{code}-{line}\r\n".encode())
                self.wfile.write(f"{code} {lines[-1]}\r\n".encode())

            def handle(self):
                # The client may give up first (timeout tests).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    fake._session(self)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True
            block_on_close = False

        self._server = Server(("127.0.0.1", 0), Session)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def host(self) -> str:
        return self._server.server_address[0]

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def refuse(self, address: str, code: int = 550, text: str = "5.1.1 Recipient address rejected") -> None:
        self.refused[address] = (code, text)

    def start(self) -> "FakeSMTPServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- one client session -------------------------------------------------------------------
    def _session(self, session) -> None:
        session.reply(220, f"{self.hostname} ESMTP fake")
        sender, recipients, authenticated = "", [], not self.username
        while True:
            line = session.rfile.readline()
            if not line:
                return
            verb, _, argument = line.decode("utf-8", errors="replace").rstrip("\r\n").partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                extensions = ["8BITMIME", "SMTPUTF8", "SIZE 10240000"]
                if self.username:
                    extensions.append("AUTH PLAIN")
                session.reply(250, self.hostname, *extensions)
            elif verb == "HELO":
                session.reply(250, self.hostname)
            elif verb == "AUTH":
                authenticated = self._auth(session, argument)
            elif verb == "MAIL":
                if not authenticated:
                    session.reply(530, "5.7.0 Authentication required")
                    continue
                sender, recipients = _address(argument), []
                session.reply(250, "2.1.0 Ok")
            elif verb == "RCPT":
                address = _address(argument)
                if address in self.refused:
                    session.reply(*self.refused[address])
                else:
                    recipients.append(address)
                    session.reply(250, "2.1.5 Ok")
            elif verb == "DATA":
                if not recipients:
                    session.reply(554, "5.5.1 Error: no valid recipients")
                    continue
                session.reply(354, "End data with <CR><LF>.<CR><LF>")
                self._data(session, sender, recipients)
                sender, recipients = "", []
            elif verb == "RSET":
                sender, recipients = "", []
                session.reply(250, "2.0.0 Ok")
            elif verb == "NOOP":
                session.reply(250, "2.0.0 Ok")
            elif verb == "QUIT":
                session.reply(221, "2.0.0 Bye")
                return
            else:
                session.reply(502, "5.5.2 Error: command not recognized")

    def _auth(self, session, argument: str) -> bool:
        mechanism, _, initial = argument.partition(" ")
        if mechanism.upper() != "PLAIN" or not initial:
            session.reply(504, "5.5.4 Unrecognized authentication type")
            return False
        _, username, password = base64.b64decode(initial).decode().split("\0")
        with self._lock:
            self.logins.append((username, password))
        if (username, password) != (self.username, self.password):
            session.reply(535, "5.7.8 Error: authentication failed")
            return False
        session.reply(235, "2.7.0 Authentication successful")
        return True

    def _data(self, session, sender: str, recipients: list[str]) -> None:
        lines = []
        while True:
            line = session.rfile.readline()
            if not line or line == b".\r\n":
                break
            lines.append(line[1:] if line.startswith(b"..") else line)  # undo dot-stuffing
        code, text = self.data_reply
        if code == 250:
            # Kept before answering: a server that goes silent now has the mail all the same.
            mail = ReceivedMail(
                sender, list(recipients), message_from_bytes(b"".join(lines), policy=policy.default)
            )
            with self._lock:
                self.messages.append(mail)
        if self.data_reply_delay:
            threading.Event().wait(self.data_reply_delay)
        session.reply(code, text)
