"""Settings, all read from the environment (see README's table and .env.example).

Unset variables fall back to the embedded defaults: a SQLite file, the
in-memory channel layer, and the offline demo provider. A value that cannot be
parsed stops start-up with a message naming the variable and the accepted form.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from chatproject import env as e

BASE_DIR = Path(__file__).resolve().parent.parent

# A .env file beside manage.py (or ENV_FILE; empty: none) fills in what the environment leaves unset.
# The test settings set ENV_FILE empty: a developer's .env never changes a test run or CI.
ENV_FILE = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
e.read_env_file(ENV_FILE)

DEBUG = e.env_bool("DEBUG", False)
SECRET_KEY = e.env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: set SECRET_KEY to a long random string "
            "(or DEBUG=true for local development, which uses an insecure development key)."
        )
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"

ALLOWED_HOSTS = e.env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
ALLOWED_ORIGINS = e.parse_origins("ALLOWED_ORIGINS", e.env_str("ALLOWED_ORIGINS"))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "servestatic",
    "corsheaders",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here (no CDN)
    "axes",
    "django.contrib.postgres",
    "chatproject",
    "providers",
    "accounts",
    "conversations",
    "billing",
]

# Every entry is async-capable, so an ASGI request does not change threads in the middleware:
# ServeStatic is WhiteNoise's async fork; chatproject.middleware holds Django's own without a
# thread hop per hook (see its docstring).
MIDDLEWARE = [
    "conversations.request_ids.RequestIdMiddleware",
    "conversations.views.error_pages.DatabaseUnavailableMiddleware",
    "chatproject.middleware.SecurityMiddleware",
    "chatproject.middleware.ContentSecurityPolicyMiddleware",  # django-csp's; CONTENT_SECURITY_POLICY
    "servestatic.middleware.ServeStaticMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "chatproject.middleware.SessionMiddleware",
    "chatproject.middleware.CommonMiddleware",
    "chatproject.middleware.CsrfViewMiddleware",
    "chatproject.middleware.AuthenticationMiddleware",
    "chatproject.middleware.MessageMiddleware",
    "chatproject.middleware.XFrameOptionsMiddleware",
    "chatproject.middleware.LoginThrottleMiddleware",  # django-axes' (last, as axes asks)
]

if DEBUG:  # an unmatched API path answers JSON, as in production (Django's debug 404 page is HTML)
    MIDDLEWARE.insert(1, "conversations.views.error_pages.DebugApiNotFoundMiddleware")

# Django finds its middleware by path; ours are subclasses: chatproject/checks.py checks them instead.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003", "axes.W002"]

ROOT_URLCONF = "chatproject.urls"
ASGI_APPLICATION = "chatproject.asgi.application"

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

# --- Database: DATABASE_URL (PostgreSQL through psycopg 3); unset -> a SQLite file.
DATABASES = {"default": e.env_database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# How long a SQLite write waits for the one writer's lock before `503 database_busy`.
DATABASE_BUSY_TIMEOUT = e.env_float("DATABASE_BUSY_TIMEOUT", 20.0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    # psycopg's connection pool (Django 5.1+): no login per turn; each thread hop returns its connection.
    if e.env_bool("DATABASE_POOL", False):
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": e.env_int("DATABASE_POOL_MIN_SIZE", 2, minimum=0),
            "max_size": e.env_int("DATABASE_POOL_MAX_SIZE", 20, minimum=1),
            "timeout": e.env_float("DATABASE_POOL_TIMEOUT", 10.0),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite under a concurrent ASGI server: one writer at a time, so a transaction takes the write
    # lock when it begins (no deadlock upgrading a read lock), writers wait up to the busy timeout
    # instead of failing at once, and readers never wait for a writer (WAL).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": DATABASE_BUSY_TIMEOUT,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    )
# A turn's opening and closing writes on PostgreSQL: natively async (psycopg, own pool per process).
TURN_DB_ASYNC = e.env_bool("TURN_DB_ASYNC", True)
TURN_DB_POOL_SIZE = e.env_int("TURN_DB_POOL_SIZE", 20, minimum=1)
TURN_DB_POOL_TIMEOUT = e.env_float("TURN_DB_POOL_TIMEOUT", 30.0)
# Admission (conversations/turns/admission.py): TURN_DB_POOL_SIZE turns open at once per process,
# the others wait their turn, at most this many for at most this long, then 503 server_busy.
TURN_QUEUE_MAX_WAITING = e.env_int("TURN_QUEUE_MAX_WAITING", 10_000, minimum=0)
TURN_QUEUE_TIMEOUT = e.env_float("TURN_QUEUE_TIMEOUT", 120.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# PostgreSQL text search configuration of `q` (conversations/search.py): the message index is built
# for 'english'; another value works but unindexed (a system check warns).
TEXT_SEARCH_CONFIG = e.env_str("TEXT_SEARCH_CONFIG", "english")

# --- Redis: REDIS_URL -> channels-redis layer (cross-process fan-out); unset -> in-memory layer.
REDIS_URL = e.env_redis_url("REDIS_URL")
REDIS_MAX_CONNECTIONS = e.env_int("REDIS_MAX_CONNECTIONS", 200, minimum=1)  # per process, for turns
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "conversations.channel_layer.ResilientRedisChannelLayer",
            # socket_timeout above channels-redis's 5 s blocking read, or idle sockets are dropped.
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": 15,
                        # a burst waits for a connection (seconds), not an error: see channel_layer.py
                        "max_connections": e.env_int("CHANNEL_LAYER_MAX_CONNECTIONS", 100, minimum=2),
                        "timeout": e.env_float("CHANNEL_LAYER_POOL_TIMEOUT", 20.0, minimum=0.1),
                    }
                ],
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- CORS / CSRF from ALLOWED_ORIGINS (JSON array or comma-separated list).
CORS_ALLOW_ALL_ORIGINS = "*" in ALLOWED_ORIGINS
CORS_ALLOWED_ORIGINS = [o for o in ALLOWED_ORIGINS if o != "*"]
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "last-event-id",
    "x-api-key",
    "x-request-id",
    "x-session-id",
    "x-session-token",
    "x-csrftoken",
)
CORS_EXPOSE_HEADERS = ("x-request-id", "retry-after")
CSRF_TRUSTED_ORIGINS = [o for o in ALLOWED_ORIGINS if o != "*"]

# --- Auth, i18n, static files.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
SERVESTATIC_USE_FINDERS = True
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# --- Login throttling (django-axes, accounts/login_throttle.py): AXES_FAILURE_LIMIT wrong passwords
# in a row for one username from one address lock that pair for AXES_COOLOFF_MINUTES (never for good).
# Counted in the database, which every server process shares.
AUTHENTICATION_BACKENDS = [
    "accounts.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = e.env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = e.env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=e.env_float("AXES_COOLOFF_MINUTES", 15.0, minimum=0.1))
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a lock ends AXES_COOLOFF_MINUTES after it began
AXES_CLIENT_IP_CALLABLE = "accounts.login_throttle.login_client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.login_throttle.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False

# --- Production hardening: on unless DEBUG; each can be turned off behind a TLS-terminating proxy.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if e.env_bool("TRUST_X_FORWARDED_PROTO", False) else None
)
SECURE_SSL_REDIRECT = e.env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = e.env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = e.env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 3600, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = e.env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = e.env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^compat/[^/]+/health$"]  # load-balancer probes over plain HTTP
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every page Django serves (django-csp; docs/browser.md): the chat page,
# the admin and its usage page, the API docs run only their own static files. The page's WebSocket
# origin (ws://host, wss://host) is added to connect-src per request (chatproject/middleware.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],  # blob: the chat page's thumbnails of files to send
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Logging.
LOG_LEVEL = e.env_log_level("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "conversations.request_ids.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # The SDKs' HTTP clients log every request URL at INFO: keep them for debugging only.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# --- Who may chat: anonymous use (owner-less sessions) is allowed only when this is on.
# Default: on with DEBUG (local play), off otherwise (a deployment must opt in). When API_KEY is
# set (seed 004's shared key), requests must carry it or a personal key.
ALLOW_ANONYMOUS = e.env_bool("ALLOW_ANONYMOUS", DEBUG)
API_KEY = e.env_str("API_KEY")

# --- Rate limit of turns per API key (per user; per IP when anonymous), e.g. "60/minute"; needs REDIS_URL.
RATE_LIMIT_TURNS = e.env_rate("RATE_LIMIT_TURNS", "60/minute")
# Tokens (input + output) per minute per API key / user / IP, beside the turn rate (empty: none).
RATE_LIMIT_TOKENS = e.env_rate("RATE_LIMIT_TOKENS", "")

# --- Prices and budgets (docs/usage.md). PRICES: {"provider:model": {"input", "cached_input", "output"}}
# in USD per million tokens, over the shipped defaults; admin rows win over both.
PRICES = e.env_json_object("PRICES")
# Budgets: AMOUNT/PERIOD (day, week, month, none), e.g. "10/month"; empty: none. A new user's or
# key's budget starts from the default (a staff-set "*" row wins); mounts and anonymous callers
# are bounded by default.
BUDGET_DEFAULT_USER = e.env_str("BUDGET_DEFAULT_USER")
BUDGET_DEFAULT_KEY = e.env_str("BUDGET_DEFAULT_KEY")
BUDGET_ANONYMOUS = e.env_str("BUDGET_ANONYMOUS", "5/day")
BUDGET_MOUNT_DEFAULT = e.env_str("BUDGET_MOUNT_DEFAULT", "5/day")
BUDGET_MOUNTS = e.env_json_object("BUDGET_MOUNTS")  # {"layercode": "20/day"}: per mount
BUDGET_RESERVE_OUTPUT_TOKENS = e.env_int("BUDGET_RESERVE_OUTPUT_TOKENS", 4096, minimum=1)
# Retention (manage.py prune_sessions): sessions untouched for this many days go (0: kept forever);
# with an archive directory, each is written there as its export first.
RETENTION_DAYS = e.env_int("RETENTION_DAYS", 0, minimum=0)
RETENTION_ARCHIVE_DIR = e.env_str("RETENTION_ARCHIVE_DIR")
from billing.budgets import parse_budget as _parse_budget  # noqa: E402

for _name in ("BUDGET_DEFAULT_USER", "BUDGET_DEFAULT_KEY", "BUDGET_ANONYMOUS", "BUDGET_MOUNT_DEFAULT"):
    _parse_budget(globals()[_name], _name)  # a malformed value stops start-up, naming the variable
for _mount, _spec in BUDGET_MOUNTS.items():
    _parse_budget(str(_spec), f"BUDGET_MOUNTS[{_mount}]")

# --- Chat behaviour.
MAX_HISTORY_MESSAGES = e.env_int("MAX_HISTORY_MESSAGES", 10, minimum=0, maximum=1000)
MAX_MESSAGE_BYTES = e.env_int("MAX_MESSAGE_BYTES", 100_000, minimum=1)
# Client tools (docs/tools.md): each tool's JSON Schema, and each tool result's output, in bytes.
TOOL_SCHEMA_MAX_BYTES = e.env_int("TOOL_SCHEMA_MAX_BYTES", 32 * 1024, minimum=64)
TOOL_RESULT_MAX_BYTES = e.env_int("TOOL_RESULT_MAX_BYTES", 256 * 1024, minimum=64)
# --- Attachments (docs/attachments.md): images (PNG, JPEG, WebP, GIF), PDF and plain text, their
# type sniffed from their bytes. Limits per file, per message, and per owner per day (0: none).
ATTACHMENT_MAX_BYTES = e.env_int("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
ATTACHMENT_MAX_FILES = e.env_int("ATTACHMENT_MAX_FILES", 10, minimum=1, maximum=100)
ATTACHMENT_DAILY_BYTES = e.env_int("ATTACHMENT_DAILY_BYTES", 500 * 1024 * 1024, minimum=0)
# An image's pixels (width x height): more is refused before anything is stored (decompression bombs).
ATTACHMENT_MAX_PIXELS = e.env_int("ATTACHMENT_MAX_PIXELS", 50_000_000, minimum=1)
# POST /api/attachments streams its body past the request guard with its own deadline.
ATTACHMENT_UPLOAD_TIMEOUT_SECONDS = e.env_float("ATTACHMENT_UPLOAD_TIMEOUT_SECONDS", 300.0, minimum=1.0)
# Uploads never sent in a message are deleted after this many hours (manage.py prune_attachments).
ATTACHMENT_UNSENT_HOURS = e.env_int("ATTACHMENT_UNSENT_HOURS", 24, minimum=1)
# Remote (https) attachments the server fetches for a provider that needs bytes: time and size caps.
ATTACHMENT_FETCH_TIMEOUT_SECONDS = e.env_float("ATTACHMENT_FETCH_TIMEOUT_SECONDS", 15.0, minimum=0.5)
# (ATTACHMENT_FETCH_ALLOW_LOOPBACK, which lets the test suite fetch from 127.0.0.1, is deliberately
# not read from the environment: only test code sets it, so no deployment can turn it on.)
ATTACHMENT_FETCH_ALLOW_LOOPBACK = False
# Where files are kept: "filesystem" (MEDIA_ROOT; a volume in docker-compose.yml) or "s3" (any
# S3-compatible object store, through django-storages: the AWS_* variables below).
ATTACHMENT_STORAGE = e.env_choice("ATTACHMENT_STORAGE", "filesystem", ("filesystem", "s3"))
MEDIA_ROOT = e.env_str("MEDIA_ROOT") or str(BASE_DIR / "media")
if ATTACHMENT_STORAGE == "s3":
    _attachment_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": e.env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": e.env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": e.env_str("AWS_S3_REGION_NAME") or None,
            "access_key": e.env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": e.env_str("AWS_SECRET_ACCESS_KEY") or None,
            "location": e.env_str("AWS_LOCATION", "attachments"),
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 300,
            # Signed URLs with Signature Version 4 (botocore presigns with SigV2 in us-east-1 and other
            # old regions, which newer AWS buckets, Cloudflare R2 and Backblaze B2 refuse).
            "signature_version": "s3v4",
            # A download is held in memory up to 1 MiB, on disk past it (0, the default: all in memory).
            "max_memory_size": 1024 * 1024,
            "file_overwrite": False,
        },
    }
    if not _attachment_storage["OPTIONS"]["bucket_name"]:
        raise e.invalid("AWS_STORAGE_BUCKET_NAME", "", "the bucket's name (ATTACHMENT_STORAGE=s3)")
else:
    _attachment_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(Path(MEDIA_ROOT) / "attachments"), "base_url": None},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "attachments": _attachment_storage,
}
# Whole request bodies: larger ones get 413 before Django reads them; slower ones 408.
REQUEST_MAX_BYTES = e.env_int("REQUEST_MAX_BYTES", 8 * 1024 * 1024, minimum=1024)
REQUEST_BODY_TIMEOUT_SECONDS = e.env_float("REQUEST_BODY_TIMEOUT_SECONDS", 30.0, minimum=0.1)
REQUEST_MAX_HEADER_BYTES = e.env_int("REQUEST_MAX_HEADER_BYTES", 32 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BYTES
WS_MAX_FRAMES_PER_SECOND = e.env_float("WS_MAX_FRAMES_PER_SECOND", 20.0, minimum=0.1)
# A WebSocket's API key in its URL (?api_key=) lands in access logs: refused unless this is on
# (old clients, while they move to the X-API-Key header or a ticket from POST /api/ws-ticket).
WS_API_KEY_IN_QUERY = e.env_bool("WS_API_KEY_IN_QUERY", False)
# Retries before the first token (never after), then fallbacks ("provider:model", in order).
LLM_RETRY_ATTEMPTS = e.env_int("LLM_RETRY_ATTEMPTS", 2, minimum=0, maximum=10)
LLM_RETRY_BACKOFF = e.env_float("LLM_RETRY_BACKOFF", 0.5)
LLM_RETRY_MAX_WAIT = e.env_float("LLM_RETRY_MAX_WAIT", 10.0)
LLM_FALLBACKS = e.env_list("LLM_FALLBACKS")
# A turn still 'streaming' after this long is treated as abandoned (it no longer blocks the session).
TURN_STALE_SECONDS = e.env_int("TURN_STALE_SECONDS", 900, minimum=10)
# Resume: how long a turn's events stay replayable; how long a turn keeps generating with no listener.
TURN_BUFFER_TTL_SECONDS = e.env_int("TURN_BUFFER_TTL_SECONDS", 600, minimum=1)
# Events reach this process's streams at once; the replay buffer and other processes get them in
# batches gathered over this interval (one Redis round trip per batch, not per token).
TURN_PUBLISH_INTERVAL_SECONDS = e.env_float("TURN_PUBLISH_INTERVAL_SECONDS", 0.02)
WS_DETACH_GRACE_SECONDS = e.env_float("WS_DETACH_GRACE_SECONDS", 15.0)
HTTP_DETACH_GRACE_SECONDS = e.env_float("HTTP_DETACH_GRACE_SECONDS", 0.0)
# AI SDK chats resume after a reload, and the SDK's stop only aborts its fetch: their turns go on this long.
AI_SDK_DETACH_GRACE_SECONDS = e.env_float("AI_SDK_DETACH_GRACE_SECONDS", 15.0)
# A WebSocketChatTransport send frame carries the chat's messages: a larger limit than WS_MAX_FRAME_BYTES.
AI_SDK_WS_MAX_FRAME_BYTES = e.env_int("AI_SDK_WS_MAX_FRAME_BYTES", 2_000_000, minimum=1024)
SHUTDOWN_GRACE_SECONDS = e.env_float("SHUTDOWN_GRACE_SECONDS", 10.0)
# Recovery of answers left streaming by a dead process: heartbeat, sweep interval, orphan age.
TURN_HEARTBEAT_SECONDS = e.env_float("TURN_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
TURN_SWEEP_SECONDS = e.env_float("TURN_SWEEP_SECONDS", 30.0, minimum=0.1)
TURN_ORPHAN_SECONDS = e.env_float("TURN_ORPHAN_SECONDS", 30.0)
WS_MAX_FRAME_BYTES = e.env_int("WS_MAX_FRAME_BYTES", 200_000, minimum=1024)

# --- LLM providers (see README "Providers"). LLM_PROVIDER unset -> the first provider with a key,
# in the order below, else the offline demo provider.
GEMINI_API_KEY = (
    e.env_str("GEMINI_API_KEY") or e.env_str("GOOGLE_API_KEY") or e.env_str("GOOGLE_GENERATIVE_AI_API_KEY")
)
GEMINI_BASE_URL = e.env_str("GEMINI_BASE_URL")
GEMINI_MODEL = e.env_str("GEMINI_MODEL", "gemini-2.5-flash")
GEMINI_API_VERSION = e.env_str("GEMINI_API_VERSION")
GEMINI_EXTRA_HEADERS = e.env_json_object("GEMINI_EXTRA_HEADERS")
# Attachments above this many bytes in one request (raw, history included) go through the Files API.
GEMINI_INLINE_MAX_BYTES = e.env_int("GEMINI_INLINE_MAX_BYTES", 20 * 1024 * 1024, minimum=0)
OPENAI_API_KEY = e.env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = e.env_str("OPENAI_BASE_URL")
OPENAI_MODEL = e.env_str("OPENAI_MODEL", "gpt-4o-mini")
ZAI_API_KEY = e.env_str("ZAI_API_KEY")
ZAI_BASE_URL = e.env_str("ZAI_BASE_URL")
ZAI_MODEL = e.env_str("ZAI_MODEL", "glm-4.6")
# The Z.AI models that take images (comma-separated, * globs; empty: none).
ZAI_VISION_MODELS = e.env_str("ZAI_VISION_MODELS", "glm-4v*,glm-4.5v*,glm-4.6v*")
OPENAI_COMPATIBLE_BASE_URL = e.env_str("OPENAI_COMPATIBLE_BASE_URL")
OPENAI_COMPATIBLE_API_KEY = e.env_str("OPENAI_COMPATIBLE_API_KEY")
OPENAI_COMPATIBLE_MODEL = e.env_str("OPENAI_COMPATIBLE_MODEL", "llama3.2")
OPENAI_COMPATIBLE_TOOL_MODELS = e.env_str("OPENAI_COMPATIBLE_TOOL_MODELS", "*")  # may call tools; empty: none
# The OpenAI-compatible models that take images (comma-separated, * globs, e.g. llava*,qwen2.5vl*; empty: none).
OPENAI_COMPATIBLE_ATTACHMENT_MODELS = e.env_str("OPENAI_COMPATIBLE_ATTACHMENT_MODELS", "")
DEMO_DELAY = e.env_float("DEMO_DELAY", 0.02)
LLM_CONNECT_TIMEOUT = e.env_float("LLM_CONNECT_TIMEOUT", 10.0, minimum=0.1)
LLM_READ_TIMEOUT = e.env_float("LLM_READ_TIMEOUT", 120.0, minimum=0.1)
# The OpenAI SDK's HTTP transport (providers/asyncio_transport.py): asyncio, or httpx (the SDK's own).
LLM_HTTP_TRANSPORT = e.env_choice("LLM_HTTP_TRANSPORT", "asyncio", ("asyncio", "httpx"))
LLM_MODEL_ALIASES = e.env_json_object("LLM_MODEL_ALIASES")

# Optional per provider: <PREFIX>_MODELS (the models it serves, JSON array or CSV; "*": any name;
# unset: its default, alias and shipped-price models) and <PREFIX>_EXTRA_HEADERS (JSON).
for _prefix in ("GEMINI", "OPENAI", "ZAI", "OPENAI_COMPATIBLE", "DEMO"):
    globals()[f"{_prefix}_MODELS"] = e.env_list(f"{_prefix}_MODELS") or None
    if _prefix not in ("GEMINI", "DEMO"):
        globals()[f"{_prefix}_EXTRA_HEADERS"] = e.env_json_object(f"{_prefix}_EXTRA_HEADERS")

_KEYED_PROVIDERS = (
    ("gemini", GEMINI_API_KEY),
    ("openai", OPENAI_API_KEY),
    ("zai", ZAI_API_KEY),
    ("openai-compatible", OPENAI_COMPATIBLE_BASE_URL),
)
LLM_PROVIDER = e.env_str("LLM_PROVIDER").lower() or next((n for n, key in _KEYED_PROVIDERS if key), "demo")
# The offline demo answers in production only when chosen (LLM_PROVIDER=demo): a deployment that
# forgot its key gets `503 provider_not_configured`, not canned answers.
DEMO_PROVIDER_ALLOWED = DEBUG or e.env_str("LLM_PROVIDER").lower() == "demo"

# --- Seed-compatible dialects (/compat/<name>/…; README "Seed-compatible APIs").
COMPAT_DIALECTS = ("gemini-gateway", "coding-agent", "zai", "layercode", "chat-api")
COMPAT_ROOT_DIALECT = e.env_str("COMPAT_ROOT_DIALECT")
if COMPAT_ROOT_DIALECT and COMPAT_ROOT_DIALECT not in COMPAT_DIALECTS:
    raise e.invalid(
        "COMPAT_ROOT_DIALECT", COMPAT_ROOT_DIALECT, "one of " + ", ".join(COMPAT_DIALECTS) + " (or empty)"
    )
for _dialect in COMPAT_DIALECTS:
    _prefix = f"COMPAT_{_dialect.upper().replace('-', '_')}_"
    for _field in ("PROVIDER", "MODEL"):
        if e.env_str(_prefix + _field):
            globals()[_prefix + _field] = e.env_str(_prefix + _field)
    # Who may call each mount (conversations/dialects/access.py); unset: the dialect's default.
    _access = e.env_str(_prefix + "ACCESS")
    if _access not in ("", "closed", "anonymous", "api_key", "signature"):
        raise e.invalid(_prefix + "ACCESS", _access, "closed, anonymous, api_key or signature")
    if _access == "signature" and _dialect != "layercode":
        raise e.invalid(
            _prefix + "ACCESS", _access, "closed, anonymous or api_key (signature is layercode's)"
        )
    if _access:
        globals()[_prefix + "ACCESS"] = _access
    # Browser origins allowed to call this mount only (CORS, without credentials): JSON array or CSV.
    globals()[_prefix + "ORIGINS"] = e.parse_origins(_prefix + "ORIGINS", e.env_str(_prefix + "ORIGINS"))
# The seed's own variable names, as aliases: 004's CORS_ORIGINS.
if not globals()["COMPAT_CHAT_API_ORIGINS"]:
    COMPAT_CHAT_API_ORIGINS = e.parse_origins("CORS_ORIGINS", e.env_str("CORS_ORIGINS"))
# Proxies of ours in front of the server: how many X-Forwarded-For hops to believe (0: the socket's peer).
TRUSTED_PROXIES = e.env_int("TRUSTED_PROXIES", 0, minimum=0, maximum=10)
COMPAT_FORWARD_HEADERS = e.env_list("COMPAT_FORWARD_HEADERS")
NXCODE_APP_ID = e.env_str("NXCODE_APP_ID")
THREAD_ID = e.env_str("THREAD_ID")
for _name in ("LAYERCODE_GREETING", "LAYERCODE_FALLBACK", "LAYERCODE_SYSTEM_PROMPT"):
    if _name in __import__("os").environ:  # unset keeps the dialect's default; empty greeting = none
        globals()[_name] = __import__("os").environ[_name]
# 004 (chat-api): the seed's LLM_MODEL picks its model (COMPAT_CHAT_API_MODEL wins); its turns'
# rate per caller, in place of RATE_LIMIT_TURNS (the seed's 20 per 60 s; empty for none).
LLM_MODEL = e.env_str("LLM_MODEL")
COMPAT_CHAT_API_RATE_LIMIT = e.env_rate("COMPAT_CHAT_API_RATE_LIMIT", "20/60 seconds")
# 003 (layercode): the secret the platform signs webhooks with; unset: refused unless DEBUG.
LAYERCODE_WEBHOOK_SECRET = e.env_str("LAYERCODE_WEBHOOK_SECRET")

# --- Telemetry (docs/telemetry.md): OpenTelemetry spans and GenAI metrics; /metrics for Prometheus.
# Off unless asked for (an OTLP endpoint, an OTEL_*_EXPORTER, METRICS_ENABLED): then nothing of the
# SDK is even imported. The SDK reads the other OTEL_* variables (headers, timeouts, resource) itself.
OTEL_SDK_DISABLED = e.env_bool("OTEL_SDK_DISABLED", False)
OTEL_SERVICE_NAME = e.env_str("OTEL_SERVICE_NAME")
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = e.env_str(
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
).lower() in ("true", "1", "yes", "on", "span_only", "span_and_event")


def _otel_exporters(signal: str) -> tuple[str, ...]:
    """OTEL_<SIGNAL>_EXPORTER (otlp, console, none; a list): unset, ``otlp`` when an endpoint is set."""
    name = f"OTEL_{signal}_EXPORTER"
    endpoint = e.env_str("OTEL_EXPORTER_OTLP_ENDPOINT") or e.env_str(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    chosen = e.env_list(name, ["otlp"] if endpoint else [])
    if any(value not in ("otlp", "console", "none") for value in chosen):
        raise e.invalid(name, ",".join(chosen), "otlp, console or none (Prometheus: METRICS_ENABLED)")
    if OTEL_SDK_DISABLED:
        return ()
    exporters = tuple(dict.fromkeys(v for v in chosen if v != "none"))
    protocol = e.env_str(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or e.env_str("OTEL_EXPORTER_OTLP_PROTOCOL")
    if "otlp" in exporters and protocol not in ("", "http/protobuf"):
        raise e.invalid("OTEL_EXPORTER_OTLP_PROTOCOL", protocol, "http/protobuf (the exporter installed)")
    return exporters


OTEL_TRACES_EXPORTER = _otel_exporters("TRACES")
OTEL_METRICS_EXPORTER = _otel_exporters("METRICS")
# Prometheus text format: on the app at /metrics behind `Authorization: Bearer <METRICS_TOKEN>`,
# and/or on a listener of its own (METRICS_BIND, e.g. 127.0.0.1:9464); one of the two is required.
METRICS_ENABLED = e.env_bool("METRICS_ENABLED", False)
METRICS_TOKEN = e.env_str("METRICS_TOKEN")
METRICS_BIND: tuple[str, int] | None = None
if _bind := e.env_str("METRICS_BIND"):
    _host, _, _port = _bind.rpartition(":")
    if not _host or not _port.isdigit() or not 0 < int(_port) < 65536:
        raise e.invalid("METRICS_BIND", _bind, "host:port such as 127.0.0.1:9464 ([::1]:9464 for IPv6)")
    METRICS_BIND = (_host.strip("[]"), int(_port))
if METRICS_ENABLED and not (METRICS_TOKEN or METRICS_BIND):
    raise ImproperlyConfigured(
        "METRICS_ENABLED=true needs METRICS_TOKEN (for /metrics on the app) or METRICS_BIND "
        "(a listener of its own, e.g. 127.0.0.1:9464): metrics are never served to anyone who asks."
    )
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise e.invalid("METRICS_TOKEN", "…", "at least 16 characters (e.g. `openssl rand -hex 32`)")

# --- Django REST framework and the OpenAPI schema.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["conversations.api.permissions.CallerAllowed"],
    "DEFAULT_PARSER_CLASSES": ["conversations.api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "conversations.api.exception_handler.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Who may read the OpenAPI schema (/api/schema/) and Swagger UI (/api/docs/): public, authenticated
# (a user or an API key), staff, or off (404). Default: public under DEBUG, authenticated otherwise.
API_DOCS = e.env_choice(
    "API_DOCS", "public" if DEBUG else "authenticated", ("public", "authenticated", "staff", "off")
)
SPECTACULAR_SETTINGS = {
    "TITLE": "Chat backend API",
    "DESCRIPTION": "History, chat turns and streaming for LLM chat applications.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from drf-spectacular-sidecar's static files, not a CDN; no validator badge (a
    # request to validator.swagger.io with the whole schema URL).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "conversations.api.schema.add_non_drf_paths",
    ],
}
