import importlib
import ipaddress
import os
import socket

import pytest
from django.conf import settings
from django.utils import translation

from config.celery import app as celery_app
from config.translations import compile_catalogs

# Real Celery worker fixtures (celery_worker, celery_idle_queue) for tests marked `broker`.
pytest_plugins = ["tests.celery_worker"]

# --- French and Arabic ---------------------------------------------------------------------------
# The committed catalogs, compiled as ./livra does, before Django reads any of them (pytest run
# directly, without ./livra, reads them in French and Arabic too).
compile_catalogs()


@pytest.fixture(autouse=True)
def english_after_each_test():
    """A test that switched language (translation.activate, override) does not leak it."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


# --- No network except loopback -----------------------------------------------------------------
_real_connect = socket.socket.connect


def _loopback_only_connect(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            allowed = ipaddress.ip_address(host).is_loopback
        except ValueError:
            allowed = host == "localhost"
        if not allowed:
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {host}")
    return _real_connect(sock, address)


socket.socket.connect = _loopback_only_connect


# --- Services the environment provides ------------------------------------------------------
def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def on_redis_broker() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))


def pytest_collection_modifyitems(config, items):
    no_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    no_broker = pytest.mark.skip(reason="needs a Redis broker: set CELERY_BROKER_URL=redis://...")
    for item in items:
        if "postgres" in item.keywords and not on_postgres():
            item.add_marker(no_pg)
        if "broker" in item.keywords and not on_redis_broker():
            item.add_marker(no_broker)


# CI sets LIVRA_FORBID_SKIPS=1: a test that needs a service must run there, never skip.
_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("LIVRA_FORBID_SKIPS") == "1" and _skipped:
        print(f"\nLIVRA_FORBID_SKIPS=1 but {len(_skipped)} test(s) were skipped:")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = 1


# --- Celery: tasks run inline unless a test starts a real worker ----------------------------
@pytest.fixture(autouse=True)
def celery_runs_tasks_inline():
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Real hashing costs ~0.3 s per user; tests create many users and prove nothing about it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def data_from_migrations(request):
    # Transactional tests flush every table, data migrations' rows included; put back what a
    # real deployment always has: the default templates and the agents' groups.
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and marker.kwargs.get("transaction"):
        request.getfixturevalue("transactional_db")
        from django.apps import apps

        from messaging.default_templates import install_default_templates

        install_default_templates()
        importlib.import_module("orders.migrations.0002_default_groups").create_default_groups(apps, None)
        importlib.import_module(
            "messaging.migrations.0004_outbox_sweep_schedule_and_permissions"
        ).grant_messaging_permissions(apps, None)
        importlib.import_module(
            "orders.migrations.0005_store_delivery_permissions"
        ).grant_store_delivery_permissions(apps, None)
        importlib.import_module(
            "automations.migrations.0002_sweep_schedule_default_rules_permissions"
        ).grant_automation_permissions(apps, None)
        importlib.import_module("orders.migrations.0011_hash_authtoken_keys").grant_api_token_permissions(
            apps, None
        )
        importlib.import_module(
            "messaging.migrations.0007_provider_webhook_store_pii_no_provider"
        ).grant_view_pii(apps, None)


@pytest.fixture
def reply_task_states(monkeypatch):
    """The sandbox phone's reply task, run inline, keeps its state in the result backend as a
    worker's run does (the phone page reads it there), and its failure does not raise into the
    request that queued it."""
    from messaging.sandbox_tasks import sandbox_reply_post_task

    monkeypatch.setattr(sandbox_reply_post_task, "store_eager_result", True)
    celery_app.conf.task_store_eager_result, celery_app.conf.task_eager_propagates = True, False
    yield
    celery_app.conf.task_store_eager_result, celery_app.conf.task_eager_propagates = False, True
