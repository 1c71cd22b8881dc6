"""Livra settings: everything that differs between machines comes from the environment.

With no environment at all Livra runs on embedded defaults (SQLite and a filesystem broker
under ``var/``), which is what the quick start uses.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LIVRA_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment unless DEBUG=1.")
    SECRET_KEY = "livra-insecure-dev-only-key"  # noqa: S105 - only reachable with DEBUG on

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_celery_results",
    "orders",
    "messaging",
    "carriers",
    "automations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions (the language switch stores its choice there), before common (redirects).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'livra.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: WAL lets readers run beside the one writer, and
    # IMMEDIATE transactions take the write lock up front instead of failing half-way.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
# Status changes own their transactions (orders.services); requests must not wrap them.
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Kept connections (DB_CONN_MAX_AGE > 0) are checked before reuse instead of failing a request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Livra's pages read in English, French and Arabic (right to left). The language comes from the
# switch on every page (a cookie), else the browser's Accept-Language, else English. Catalogs are
# per app (<app>/locale) plus the project's (locale/, for templates/ and config/); `./livra`
# compiles them (manage.py compile_translations) so no gettext is needed to run Livra.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French")), ("ar", _("Arabic"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates and amounts per language: Django's formats, with Livra's corrections in config/formats.
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = os.environ.get("TIME_ZONE", "Africa/Casablanca")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve admin assets straight from the apps so that the quick start needs no collectstatic.
WHITENOISE_USE_FINDERS = True

# --- Celery -----------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://localhost//")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Broadcasts (worker control, e.g. `celery inspect`) go here instead of ./control.
        "control_folder": str(BROKER_DIR / "control"),
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        # The default (1 s) lets a demo worker take one message a second; the folder is local.
        "polling_interval": 0.1,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu's Redis transport with the fix that keeps a worker alive when Redis goes away.
    CELERY_BROKER_TRANSPORT = "config.redis_transport:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Without these a publish to a Redis that is frozen, failing over or behind a dead network
        # path waits forever, and so does the webhook that committed before it. BRPOP waits 1 s
        # (the polling interval), so a read may take that long on a healthy server.
        "socket_connect_timeout": 2,
        "socket_timeout": 2,
    }
# Publishes are made after their commit and must not hold up the request that committed: one
# attempt (redis-py replaces a pooled connection that a Redis restart closed), failing within the
# timeouts above when the broker is away; config.celery.task_publish logs it and the beat sweeps
# pick up the work (Celery's default retries three times, ~8 s on a frozen Redis).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 0}
# The worker and beat wait for the broker however long it is away (Celery gives up after 100
# attempts, ~45 minutes, and the worker exits).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "livra")
CELERY_TASK_IGNORE_RESULT = True
# Results are kept only for the tasks that ask (ignore_result=False): the sandbox phone shows the
# state of each reply its worker posts (sending, retrying and why, failed and why).
CELERY_RESULT_BACKEND = "django-db"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A task running when the broker connection drops carries on: its work is in the database, and
# cancelling it could cut a provider call mid-request (an outcome nobody knows, never resent).
# Celery 6 turns this on by default.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connection around every task unless this is set,
# so each send paid for a new PostgreSQL backend (~15 ms of server CPU here). With it, Django's
# own rules decide (config/celery.py): DB_CONN_MAX_AGE and the health check above.
CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))

# --- Logging: no payloads, no PII; event ids and order ids only ------------------------------
# Request lines are logged with their query values redacted (?q=*): config/access_log.py, which
# gunicorn's access log uses too (Procfile).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"redact_request_line": {"()": "config.access_log.RedactRequestLineFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # runserver's request log (`GET /admin/?q=0612… HTTP/1.1`); Django's own config of it is
        # replaced, so it names its handler and level again.
        "django.server": {
            "handlers": ["console"],
            "filters": ["redact_request_line"],
            "level": "INFO",
            "propagate": False,
        },
        # Provider SDKs log request headers (API keys) and bodies (phones, texts) at DEBUG.
        "python_http_client": {"level": "INFO"},
        "twilio.http_client": {"level": "WARNING"},
    },
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    CSRF_COOKIE_HTTPONLY = False
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# --- Livra ------------------------------------------------------------------------------------
# The public base URL providers call back (delivery receipts, inbound messages).
LIVRA_PUBLIC_URL = os.environ.get("LIVRA_PUBLIC_URL", "http://127.0.0.1:8000")
# Where the sandbox carrier's walk posts its parcels' events (Livra's own carrier webhook):
# this web server, unless set (e.g. to reach it on an internal address).
LIVRA_SANDBOX_CARRIER_WEBHOOK_BASE = os.environ.get("LIVRA_SANDBOX_CARRIER_WEBHOOK_BASE") or LIVRA_PUBLIC_URL
# The team channel rules' alerts are posted to: a Slack (or Mattermost, Google Chat) incoming
# webhook URL, which is a secret. Unset: alerts stay on the orders' timelines and in admin only.
TEAM_CHANNEL_WEBHOOK_URL = os.environ.get("TEAM_CHANNEL_WEBHOOK_URL", "")
# How many provider calls one outbox drain makes side by side (messaging/services/dispatch.py).
LIVRA_OUTBOX_SEND_THREADS = int(os.environ.get("LIVRA_OUTBOX_SEND_THREADS", "8"))
# The outbox's first retry waits half to all of this, each next one twice as long (capped at 1 h).
LIVRA_OUTBOX_BACKOFF_BASE_SECONDS = float(os.environ.get("LIVRA_OUTBOX_BACKOFF_BASE_SECONDS", "30"))
# Store webhook bodies above this are refused with 413 (a Shopify order is a few kB to ~100 kB).
LIVRA_STORE_WEBHOOK_MAX_BYTES = int(os.environ.get("LIVRA_STORE_WEBHOOK_MAX_BYTES", str(1024 * 1024)))
# A delivered COD parcel no remittance statement paid after this many days is listed as overdue
# (admin → remittance statements → reconciliation; the page's ?days= overrides it).
LIVRA_REMITTANCE_OVERDUE_DAYS = int(os.environ.get("LIVRA_REMITTANCE_OVERDUE_DAYS", "14"))

# --- REST API (orders/api) ----------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an unauthenticated call gets 401 with `WWW-Authenticate: Token`. The session
    # serves the browsable API and Swagger UI to users logged in to admin. Tokens are Livra's,
    # stored hashed (orders/api/models.py), not rest_framework.authtoken's clear-text keys.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "orders.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Bodies nest (customer, items): JSON only, read without recursing on it.
    "DEFAULT_PARSER_CLASSES": ["orders.api.parsers.UntrustedJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Livra API",
    "DESCRIPTION": (
        "Orders, their timeline and messages, status transitions and consent, scoped to the stores "
        "the caller is a member of. Authenticate with `Authorization: Token <key>`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and Swagger UI need a logged-in user (session) or a token, like the API itself.
    # Swagger UI's assets are served from this server (drf-spectacular-sidecar), not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `status` (or `source`) with different choices: name each enum.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.transitions.OrderStatus",
        "PaymentMethodEnum": "orders.transitions.PaymentMethod",
        "OrderEventSourceEnum": "orders.models.OrderEvent.Source",
        "LanguageEnum": "orders.models.Customer.Language",
        "ChannelEnum": "messaging.models.Channel",
        "MessageStatusEnum": "messaging.models.Message.Status",
        "ConsentStatusEnum": "messaging.models.Consent.Status",
        "ConsentSourceEnum": "messaging.models.Consent.Source",
    },
}
