"""Request logs carry no personal data: query strings are logged with their keys, not their values.

The gunicorn test runs the Procfile's own ``web:`` line (what production and ``./livra demo`` run)
and reads its access log after a phone search in the API and in admin.
"""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.faults.services import free_port

ROOT = Path(__file__).resolve().parents[2]
PHONE_SEARCH = "/api/orders/?phone=%2B212612345678&page=2"
ADMIN_SEARCH = "/admin/orders/order/?q=0612345678"
REFERER_SEARCH = "/admin/orders/customer/?q=0698765432"


def procfile_command(process: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{process}:"):
            return line.partition(":")[2].strip()
    raise LookupError(process)


def get(url: str, **headers) -> int:
    return requests.get(url, headers=headers, allow_redirects=False, timeout=10).status_code


@pytest.fixture
def web_log(tmp_path):
    """Run the Procfile's web process on a free port; yields its base URL and its log's path."""
    port = free_port()
    log_path = tmp_path / "web.log"
    environment = {
        **os.environ,
        "PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    with log_path.open("wb") as log:
        web = subprocess.Popen(
            ["bash", "-c", f"exec {procfile_command('web')}"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while get_or_none(f"{base_url}/admin/login/") is None:
            assert web.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "gunicorn did not answer in 30 s"
            time.sleep(0.2)
        yield base_url, log_path
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)


def access_log_with(log_path: Path, *wanted: str) -> str:
    """The log once every ``wanted`` text is in it: gunicorn writes an entry after its answer."""
    deadline = time.monotonic() + 10
    while not all(text in (log := log_path.read_text()) for text in wanted) and time.monotonic() < deadline:
        time.sleep(0.05)
    return log


def get_or_none(url: str) -> int | None:
    try:
        return get(url)
    except requests.ConnectionError:
        return None


def test_gunicorns_access_log_keeps_the_query_keys_and_drops_the_phone_numbers(web_log):
    base_url, log_path = web_log

    # when: a phone search in the API, and one in admin coming from another search page
    assert get(base_url + PHONE_SEARCH) == 401
    assert get(base_url + ADMIN_SEARCH, Referer=base_url + REFERER_SEARCH) == 302

    # then
    log = access_log_with(log_path, '" 401 ', '" 302 ')
    assert "/api/orders/?phone=*&page=* HTTP/1.1" in log
    assert "/admin/orders/order/?q=* HTTP/1.1" in log
    assert "/admin/orders/customer/?q=*" in log  # the referer
    for digits in ("212612345678", "0612345678", "0698765432", "612345678"):
        assert digits not in log


def test_djangos_development_server_log_redacts_the_query_values():
    server_log = logging.getLogger("django.server")
    record = server_log.makeRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        ("GET " + ADMIN_SEARCH + " HTTP/1.1", "200", "9"),
        None,
    )

    server_log.filter(record)

    assert record.getMessage() == '"GET /admin/orders/order/?q=* HTTP/1.1" 200 9'
