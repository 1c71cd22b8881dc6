"""Browser tests: Debian's Chromium driven by Playwright, headless, against pytest-django's live server.

Browsers are never downloaded (no ``playwright install``): CI installs Debian's ``chromium`` and
the ``playwright`` package. Without either, the tests skip and say which is missing (CI forbids
skips, so there they must run).
"""

import importlib.util
import os

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_missing() -> str:
    """Why browser tests cannot run here, or "" when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright; never `playwright install`)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Debian's Chromium is not at {CHROMIUM} (apt-get install -y chromium)"
    return ""


@pytest.fixture
def chromium(transactional_db, live_server, monkeypatch):
    """A headless Chromium for one test, started after the database and closed before its flush."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread, so Django would take
    # the test's own ORM calls for calls from async code. They are plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # While that loop runs, Django keeps this thread's connections apart from the ones it
        # had before (asgiref's Local follows the running loop): close them, or they outlive
        # the test and keep the test database from being dropped.
        connections.close_all()


@pytest.fixture
def browser_as(chromium, live_server):
    """``browser_as(user)``: a fresh browser page logged in as ``user`` on the live server, its
    browser set to French (``locale=`` another language)."""
    contexts = []

    def open_page(user, locale="fr-FR"):
        client = Client()
        client.force_login(user)
        context = chromium.new_context(base_url=live_server.url, locale=locale)
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
