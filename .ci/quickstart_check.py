"""CI's check of the README's quick start: `./livra demo` works from a clean checkout.

Clones the committed HEAD into a temporary directory and runs `./livra demo` there on the embedded
defaults (no DATABASE_URL, CELERY_BROKER_URL or LIVRA_ADMIN_PASSWORD) on a free port, never the
default one. Once the banner is printed it logs in to the admin with the password read from the
output, checks that the demo orders are listed, that the Celery worker sent the live order's
confirmation request, that a reply typed on the sandbox phone page reaches Livra (the worker
posts it to LIVRA_PUBLIC_URL, which must follow PORT) and confirms the order, and that the demo's
parcels move: the sandbox carrier's walk (beat) posts their next step to Livra's carrier webhook
and the worker moves their orders. Then it sends
SIGTERM to the demo's process group and checks that every process it started exits in time.

Standard library only. Exits non-zero with the reason and the tail of the demo's output.

    python .ci/quickstart_check.py                   # CI: a clone of HEAD
    python .ci/quickstart_check.py --source-dir .    # the working tree, uncommitted files too
    LIVRA_QUICKSTART_SOURCE=. python .ci/quickstart_check.py
"""

# A CI script: it runs git and the checkout's own Python, and opens only http://127.0.0.1 URLs.
# ruff: noqa: S310, S603, S607

import argparse
import contextlib
import datetime
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BANNER_TIMEOUT = 360  # a fresh clone pip-installs everything first
WORKER_TIMEOUT = 60
PARCEL_TIMEOUT = 150  # the demo's parcels take a step a minute; beat walks them every 20 s
STOP_TIMEOUT = 20
MIN_ORDERS = 40
REPLY_TEXT = "oui"  # the customer confirms on the sandbox phone
# The demo must run on the embedded defaults and print a generated password.
DROPPED_ENV = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "LIVRA_ADMIN_PASSWORD",
    "LIVRA_VAR_DIR",
    "SECRET_KEY",
    "DEBUG",
    "HOST",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "DJANGO_SETTINGS_MODULE",
)
# Every process the demo starts inherits this variable: how stragglers are found, even orphans.
RUN_MARKER = "LIVRA_QUICKSTART_RUN"
# Files of a working tree that a clean checkout would not have (for --source-dir).
NOT_COPIED = {".git", ".venv", "var", "staticfiles", ".pytest_cache", ".ruff_cache"}


class CheckFailed(Exception):
    pass


def log(message: str) -> None:
    print(f"quickstart: {message}", flush=True)


# --- the demo process ---------------------------------------------------------------------------
class Demo:
    def __init__(self, checkout: Path, port: int, echo: bool):
        self.checkout, self.port, self.echo = checkout, port, echo
        self.marker = uuid.uuid4().hex
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
        # A PATH through this repository's own .venv would hand the clone our interpreter.
        own_venv = str(REPO_ROOT / ".venv")
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(own_venv)
        )
        env.update(PORT=str(self.port), PYTHONUNBUFFERED="1", **{RUN_MARKER: self.marker})
        return env

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["./livra", "demo"],
            cwd=self.checkout,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, which is what gets SIGTERM
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines.append(line)
            if self.echo:
                print(f"  demo | {line}", flush=True)

    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def tail(self, count: int = 80) -> str:
        with self._lock:
            return "\n".join(self.lines[-count:])

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        """Run manage.py in the checkout, on the same settings as the demo."""
        return subprocess.run(
            [str(self.checkout / ".venv/bin/python"), "manage.py", *args],
            cwd=self.checkout,
            env={**self.env(), "DEBUG": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )


# --- processes ----------------------------------------------------------------------------------
def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except OSError:
        return True
    return state not in ("Z", "X")


def marked_processes(marker: str) -> set[int]:
    """Processes whose environment carries this run's marker (Linux: /proc)."""
    needle = f"{RUN_MARKER}={marker}".encode()
    found = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.add(int(entry.name))
        except OSError:
            continue
    return {pid for pid in found if alive(pid)}


def describe(pids: set[int]) -> str:
    rows = []
    for pid in sorted(pids):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            cmdline = "?"
        rows.append(f"  pid {pid}: {cmdline[:160]}")
    return "\n".join(rows)


def kill_all(demo: Demo) -> None:
    """Last resort after a failure: no process of this run may outlive the check."""
    proc = demo.process
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)
    for pid in marked_processes(demo.marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


# --- HTTP ---------------------------------------------------------------------------------------
class Browser:
    """Just enough of a browser for Django admin: a cookie jar and the CSRF token."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[str, str]:
        with self.opener.open(self.base + path, timeout=30) as response:
            return response.geturl(), response.read().decode("utf-8", "replace")

    def post_form(self, path: str, fields: dict[str, str], headers: dict | None = None) -> tuple[str, str]:
        request = urllib.request.Request(
            self.base + path,
            data=urllib.parse.urlencode(fields).encode(),
            headers={"Referer": self.base + path, **(headers or {})},
        )
        with self.opener.open(request, timeout=30) as response:
            return response.geturl(), response.read().decode("utf-8", "replace")


def admin_login(browser: Browser, password: str) -> None:
    login = "/admin/login/?next=/admin/"
    _, page = browser.get(login)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if token is None:
        raise CheckFailed("the admin login page has no CSRF token")
    url, page = browser.post_form(
        login,
        {"csrfmiddlewaretoken": token.group(1), "username": "admin", "password": password, "next": "/admin/"},
    )
    if "/admin/login/" in url or "/admin/logout/" not in page:
        raise CheckFailed(f"logging in to the admin as admin with the printed password failed (at {url})")


def paginator_count(page: str) -> int | None:
    """The object count of an admin change list ("1 2 … 52 orders" → 52), None without one."""
    paginator = re.search(r'class="paginator">(.*?)</p>', page, re.DOTALL)
    if paginator is None:
        return None
    count = re.search(r"(\d+)\s+(?=[^\W\d_])", re.sub(r"<[^>]+>", " ", paginator.group(1)))
    return int(count.group(1)) if count else None


def check_order_list(browser: Browser) -> int:
    try:
        _, page = browser.get("/admin/orders/order/")
    except urllib.error.HTTPError as error:
        raise CheckFailed(f"GET /admin/orders/order/ answered {error.code}") from None
    count = paginator_count(page)
    if count is None:
        raise CheckFailed("the order list shows no order count (no admin paginator)")
    if count < MIN_ORDERS:
        raise CheckFailed(f"the order list counts {count} orders; the demo seeds at least {MIN_ORDERS}")
    if "Atlas Souk" not in page and not re.search(r"#10\d\d\b", page):
        raise CheckFailed('the order list shows neither the store "Atlas Souk" nor a demo order number')
    return count


# Messages due to go out that the worker has not sent, and those it sent since ``since``.
COUNT_MESSAGES = """
import json
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from messaging.models import Message
now, since = timezone.now(), parse_datetime("{since}")
waiting = Message.objects.filter(status__in=["queued", "sending"], next_attempt_at__lte=now).count()
sent = Message.objects.filter(sent_at__gte=since).count()
print("QUICKSTART_COUNTS", json.dumps({{"waiting": waiting, "sent": sent}}))
"""


def message_counts(demo: Demo, since: str) -> dict[str, int]:
    result = demo.manage("shell", "-v", "0", "-c", COUNT_MESSAGES.format(since=since))
    found = re.search(r"^QUICKSTART_COUNTS (.*)$", result.stdout, re.MULTILINE)
    if found is None:
        raise CheckFailed(f"could not count messages:\n{result.stdout}{result.stderr}")
    return json.loads(found.group(1))


def wait_for_sent_messages(demo: Demo, since: str) -> str:
    """The worker is alive if it sends what is due: seed_demo left the live order's confirmation
    request queued (the rest of the demo's history was sent in the past)."""
    deadline, counts = time.monotonic() + WORKER_TIMEOUT, {}
    while time.monotonic() < deadline:
        counts = message_counts(demo, since)
        if counts["sent"] and not counts["waiting"]:
            return f"{counts['sent']} message(s) sent since the demo started, none waiting"
        time.sleep(2)
    raise CheckFailed(f"the worker did not send the messages due {WORKER_TIMEOUT} s after start: {counts}")


COUNT_PARCEL_NEWS = """
import json
from django.utils.dateparse import parse_datetime
from carriers.models import TrackingEvent
from orders.models import OrderEvent
since = parse_datetime("{since}")
pushed = TrackingEvent.objects.filter(source="webhook", received_at__gte=since).count()
moved = OrderEvent.objects.filter(source="carrier", created_at__gte=since).count()
print("QUICKSTART_PARCELS", json.dumps({{"pushed": pushed, "moved": moved}}))
"""


def wait_for_moving_parcels(demo: Demo, since: str) -> str:
    """The demo's parcels move by themselves: beat walks them at the sandbox carrier, which posts
    to Livra's carrier webhook, and the worker applies the events to their orders."""
    deadline, counts = time.monotonic() + PARCEL_TIMEOUT, {}
    while time.monotonic() < deadline:
        result = demo.manage("shell", "-v", "0", "-c", COUNT_PARCEL_NEWS.format(since=since))
        found = re.search(r"^QUICKSTART_PARCELS (.*)$", result.stdout, re.MULTILINE)
        if found is None:
            raise CheckFailed(f"could not count carrier events:\n{result.stdout}{result.stderr}")
        counts = json.loads(found.group(1))
        if counts["pushed"] and counts["moved"]:
            return (
                f"{counts['pushed']} carrier event(s) pushed to the webhook, {counts['moved']} order move(s)"
            )
        time.sleep(5)
    raise CheckFailed(f"the demo's parcels did not move within {PARCEL_TIMEOUT} s: {counts}")


def reply_on_the_sandbox_phone(browser: Browser) -> str:
    """Answer the live order's confirmation request as its customer, on the phone page, and wait
    for Livra to have the reply and the order to be confirmed."""
    _, customers = browser.get("/sandbox/phone/")
    row = re.search(r'href="(/sandbox/phone/(\d+)/)">[^<]*</a>.*?</tr>', customers, re.DOTALL)
    if row is None or "awaiting confirmation" not in row.group(0):
        raise CheckFailed("the sandbox phone page lists no customer awaiting confirmation first")
    phone_path = row.group(1)
    _, phone = browser.get(phone_path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', phone)
    channel = re.search(r'<option value="(\w+)" selected>', phone)
    awaiting = re.search(r'data-order-id="(\d+)" data-status="awaiting_confirmation"', phone)
    if token is None or channel is None or awaiting is None:
        raise CheckFailed(f"the phone page {phone_path} has no reply form or no order awaiting confirmation")
    delivered_before = phone.count('data-reply-state="delivered"')
    try:
        browser.post_form(
            f"{phone_path}reply/",
            {"text": REPLY_TEXT, "channel": channel.group(1)},
            headers={"X-CSRFToken": token.group(1)},
        )
    except urllib.error.HTTPError as error:
        raise CheckFailed(f"posting a reply on the phone page answered {error.code}") from None
    confirmed = f'data-order-id="{awaiting.group(1)}" data-status="confirmed"'
    deadline, feed = time.monotonic() + WORKER_TIMEOUT, {}
    while time.monotonic() < deadline:
        _, body = browser.get(f"{phone_path}feed/")
        feed = json.loads(body)
        arrived = feed["conversation"].count('data-reply-state="delivered"') > delivered_before
        if arrived and confirmed in feed["orders"]:
            return f"the reply reached Livra and confirmed the order ({phone_path})"
        time.sleep(1)
    states = re.findall(
        r'data-reply-state="(\w+)"|class="reply-detail">([^<]*)<', feed.get("conversation", "")
    )
    raise CheckFailed(
        f"a reply typed on {phone_path} did not reach Livra in {WORKER_TIMEOUT} s: {states[-3:]}"
    )


# --- the check ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_checkout(source: Path | None, workdir: Path) -> Path:
    checkout = workdir / "livra"
    if source is None:
        log(f"cloning the committed HEAD of {REPO_ROOT}")
        subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(checkout)], check=True)
    else:
        log(f"copying the working tree {source} (uncommitted files included)")

        def ignore(directory: str, names: list[str]) -> set[str]:
            top = Path(directory).resolve() == source.resolve()
            return {n for n in names if n == "__pycache__" or (top and n in NOT_COPIED)}

        shutil.copytree(source, checkout, ignore=ignore, symlinks=True)
    return checkout


def wait_for_banner(demo: Demo) -> tuple[str, str]:
    deadline = time.monotonic() + BANNER_TIMEOUT
    while time.monotonic() < deadline:
        output = demo.output()
        if "Livra demo is running" in output:
            admin = re.search(r"^\s*Admin\s+(http://\S+)", output, re.MULTILINE)
            password = re.search(r"^\s*Password\s+(.*)$", output, re.MULTILINE)
            if admin and password:
                return admin.group(1), password.group(1).split()[0]
        if demo.process.poll() is not None:
            time.sleep(0.5)  # let the reader drain the last lines
            raise CheckFailed(f"./livra demo exited with {demo.process.returncode} before its banner")
        time.sleep(0.5)
    raise CheckFailed(f"no banner from ./livra demo within {BANNER_TIMEOUT} s")


def stop_and_check_exit(demo: Demo) -> float:
    proc = demo.process
    started = marked_processes(demo.marker) | {proc.pid}
    log(f"sending SIGTERM to the demo's process group ({len(started)} processes running)")
    began = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    deadline = began + STOP_TIMEOUT
    while time.monotonic() < deadline:
        survivors = {pid for pid in started if alive(pid)} | marked_processes(demo.marker)
        if proc.poll() is not None and not survivors:
            return time.monotonic() - began
        time.sleep(0.25)
    survivors = {pid for pid in started if alive(pid)} | marked_processes(demo.marker)
    raise CheckFailed(
        f"{len(survivors)} process(es) still running {STOP_TIMEOUT} s after SIGTERM:\n{describe(survivors)}"
    )


def run(source: Path | None, echo: bool, keep: bool) -> None:
    began = time.monotonic()
    started_at = datetime.datetime.now(datetime.UTC).isoformat()
    workdir = Path(tempfile.mkdtemp(prefix="livra-quickstart-"))
    demo = None
    try:
        checkout = prepare_checkout(source, workdir)
        if not os.access(checkout / "livra", os.X_OK):
            raise CheckFailed("the checkout has no executable ./livra (committed, with its executable bit?)")
        demo = Demo(checkout, free_port(), echo)
        log(f"running ./livra demo in {checkout} on port {demo.port}")
        demo.start()
        admin_url, password = wait_for_banner(demo)
        log(f"banner after {time.monotonic() - began:.0f} s: {admin_url}")
        expected_url = f"http://127.0.0.1:{demo.port}/admin/"
        if admin_url != expected_url:
            raise CheckFailed(f"the banner shows {admin_url}, expected {expected_url}")
        seeded = re.search(r'Superuser "admin" created with password: (\S+)', demo.output())
        if seeded is None or seeded.group(1) != password:
            raise CheckFailed(
                "a fresh checkout must print the generated admin password, once, in the banner too"
            )

        browser = Browser(f"http://127.0.0.1:{demo.port}")
        admin_login(browser, password)
        log("logged in to the admin as admin")
        log(f"the admin lists {check_order_list(browser)} orders")
        for needed in ("celery@", "beat: Starting"):
            if needed not in demo.output():
                raise CheckFailed(f"no {needed!r} in the demo's output: did the worker and beat start?")
        log(f"the worker sends messages: {wait_for_sent_messages(demo, started_at)}")
        log(f"the sandbox phone answers: {reply_on_the_sandbox_phone(browser)}")
        log(f"the demo's parcels move: {wait_for_moving_parcels(demo, started_at)}")

        log(f"all processes exited {stop_and_check_exit(demo):.1f} s after SIGTERM")
        log(f"OK in {time.monotonic() - began:.0f} s")
    except BaseException:
        if demo is not None and demo.tail():
            print(f"\n--- last lines of ./livra demo's output ---\n{demo.tail()}\n---", flush=True)
        raise
    finally:
        if demo is not None:
            kill_all(demo)
        if keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source-dir",
        type=Path,
        default=os.environ.get("LIVRA_QUICKSTART_SOURCE") or None,
        help="copy this working tree instead of cloning HEAD (env: LIVRA_QUICKSTART_SOURCE)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="echo the demo's output as it runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary checkout")
    args = parser.parse_args()
    try:
        run(Path(args.source_dir).resolve() if args.source_dir else None, args.verbose, args.keep)
    except CheckFailed as failure:
        print(f"quickstart: FAILED: {failure}", file=sys.stderr, flush=True)
        return 1
    except (subprocess.CalledProcessError, OSError) as error:
        print(f"quickstart: FAILED: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
