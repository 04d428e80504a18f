"""Django settings, read from environment variables only.

With nothing set the product runs *embedded*: SQLite in ``DATA_DIR``, Channels'
in-memory layer, an in-process realtime hub and Celery tasks run eagerly. Setting
``DATABASE_URL``, ``REDIS_URL`` and ``CELERY_BROKER_URL`` switches to the
production configuration. Every variable is listed in README.md.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ

from chatproject import redis_settings
from chatproject.limits import MAX_ID

# Lets generic classes such as ModelAdmin[Device] be subscripted at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _persistent_secret(name: str, env_var: str) -> str:
    """Return ``env_var`` if set, else a random secret generated once and kept in DATA_DIR."""
    configured: str = env.str(env_var, default="")
    if configured:
        return configured
    path = DATA_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _persistent_secret("secret_key", "SECRET_KEY")
# Earlier keys, still accepted for sessions and signatures after a rotation (REST and
# WebSocket alike); drop one once its sessions should end.
SECRET_KEY_FALLBACKS: list[str] = env.list("SECRET_KEY_FALLBACKS", default=[])
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# How many server processes the deployment runs; the system check uses it to refuse
# process-local state (in-memory layer / hub) when it cannot be shared.
SERVER_PROCESSES = env.int("SERVER_PROCESSES", default=1)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "chatproject",
    "accounts",
    "chat",
    "chat.store",
    "presence",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'chat.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers proceed during a write; IMMEDIATE transactions take the write lock
    # up front so two writers never deadlock upgrading a read lock.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests drive the server from several threads; an in-memory SQLite database fails
    # concurrent writers at once ("table is locked") where a file waits its turn.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
else:
    # A bounded connection pool per process (Django's, on psycopg_pool). Under ASGI every
    # REST request runs in a thread of its own, and per-thread persistent connections
    # (CONN_MAX_AGE) pile up until PostgreSQL refuses clients ("too many clients", seen
    # with a few processes under load); with the pool a "closed" connection goes back to
    # it, so service calls from sockets reuse connections instead of reconnecting.
    DB_POOL_SIZE = env.int("DB_POOL_SIZE", default=20)
    if DB_POOL_SIZE > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": DB_POOL_SIZE,
            "timeout": 10,
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    # No health check: it costs a "SELECT 1" round trip at the start of every service call
    # from a socket (measured: 12% of the send path); a dead connection fails and reconnects.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMBEDDED_DATABASE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"

# --- Redis: channel layer, cache, realtime routing, presence --------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# REDIS_URL names one node (any) of a Redis Cluster; every Redis client is a cluster client
# (chatproject/redis_connections.py). The Celery broker stays a standalone Redis.
REDIS_CLUSTER = env.bool("REDIS_CLUSTER", default=False)
REDIS_SOCKET_CONNECT_TIMEOUT = env.float(
    "REDIS_SOCKET_CONNECT_TIMEOUT", default=redis_settings.DEFAULT_TIMEOUT_SECONDS
)
REDIS_SOCKET_TIMEOUT = env.float(
    "REDIS_SOCKET_TIMEOUT", default=redis_settings.DEFAULT_TIMEOUT_SECONDS
)
# The cache and the channel layer use the same Redis, timeouts and pool caps as every other
# Redis client (chatproject/redis_settings.py); in-process without REDIS_URL.
_redis = redis_settings.RedisSettings(
    REDIS_URL, REDIS_SOCKET_CONNECT_TIMEOUT, REDIS_SOCKET_TIMEOUT, cluster=REDIS_CLUSTER
)
CACHES: dict[str, Any] = _redis.caches()
CHANNEL_LAYERS: dict[str, Any] = _redis.channel_layers()

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
# Periodic tasks: run by ``celery -A chatproject beat`` in production (docs/operations.md);
# embedded, by a timer thread in the server process (notifications/runner.py).
PUSH_PRUNE_INTERVAL_SECONDS = env.float("PUSH_PRUNE_INTERVAL_SECONDS", default=3600.0)
# Sync queue entries are kept this many days (history forever); a device whose cursor is
# older gets a "reset" sync page and reloads over REST (docs/protocol.md, chat/services/
# retention.py). Pruned every SYNC_PRUNE_INTERVAL_SECONDS.
SYNC_RETENTION_DAYS = env.float("SYNC_RETENTION_DAYS", default=30.0)
SYNC_PRUNE_INTERVAL_SECONDS = env.float("SYNC_PRUNE_INTERVAL_SECONDS", default=3600.0)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "prune-push-deliveries": {
        "task": "notifications.prune_deliveries",
        "schedule": PUSH_PRUNE_INTERVAL_SECONDS,
    },
    "prune-sync-queues": {
        "task": "chat.prune_sync_queues",
        "schedule": SYNC_PRUNE_INTERVAL_SECONDS,
    },
}

# --- Auth -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 30
# A device token unused for this long stops working; use extends it.
DEVICE_TOKEN_IDLE_DAYS = env.int("DEVICE_TOKEN_IDLE_DAYS", default=90)

# --- REST API ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.DeviceTokenAuthentication",
        "accounts.authentication.DeviceSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "chatproject.api.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "chatproject.api.schema.DocstringSchema",
    "EXCEPTION_HANDLER": "chatproject.api.errors.exception_handler",
    # Trusted proxies in front that append to X-Forwarded-For; the client address for
    # throttling is the one the outermost of them saw. 0: REMOTE_ADDR (a client could
    # otherwise pick a fresh address for every attempt).
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "DEFAULT_THROTTLE_RATES": {
        "login": env.str("THROTTLE_LOGIN", default="10/min"),
        "signup": env.str("THROTTLE_SIGNUP", default="20/hour"),
    },
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Chat API",
    "DESCRIPTION": "REST API of the chat server. Realtime traffic uses the WebSocket "
    "protocol described in docs/protocol.md. Every error answer has the body `Error`. "
    "Unknown fields in request bodies are ignored.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Clients send JSON (docs/protocol.md); form encodings also parse but are not described.
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    # 3.1: nullable nested objects ("last_message": null) are expressible exactly.
    "OAS_VERSION": "3.1.0",
    # The docs pages load Swagger UI and Redoc from our own static files (never a CDN: the
    # origin holds device tokens); chatproject/api/docs.py adds their CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # <id:...> path segments (chatproject/converters.py): 1 to 2**63-1.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}
    },
    # Error responses common to every operation of a kind (chatproject/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "chatproject.api.schema.add_common_error_responses",
    ],
}
# Request bodies above this are refused with 413 before parsing (a 99,999-character
# message of 4-byte characters is ~400 KB of JSON).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1_048_576

# --- Chat -------------------------------------------------------------------------------------
MESSAGE_STORE: dict[str, Any] = {
    "BACKEND": env.str(
        "MESSAGE_STORE_BACKEND", default="chat.store.django_store.DjangoMessageStore"
    ),
    "OPTIONS": {},
}
MAX_MESSAGE_LENGTH = 99_999
MAX_GROUP_MEMBERS = 100
# Live events for texts longer than this carry a preview; clients fetch the full body.
LIVE_EVENT_FULL_TEXT_LIMIT = env.int("LIVE_EVENT_FULL_TEXT_LIMIT", default=4_000)
# Frames waiting to be written to one WebSocket (its reader is slower than its events);
# past either bound the connection is closed with 4009 and the device resyncs.
WS_SEND_QUEUE_MAX_BYTES = env.int("WS_SEND_QUEUE_MAX_BYTES", default=2 * 1024 * 1024)
WS_SEND_QUEUE_MAX_FRAMES = env.int("WS_SEND_QUEUE_MAX_FRAMES", default=5_000)
SEND_RATE_LIMIT_PER_10S = env.int("SEND_RATE_LIMIT_PER_10S", default=100)
# Group commit: at most this many WebSocket sends of one process share a transaction.
SEND_BATCH_MAX = env.int("SEND_BATCH_MAX", default=128)
# Worker number for the message id generator (0-1023); unset means: lease one from Redis
# (production) or use 0 (embedded, single process).
ID_WORKER_ID = env.int("ID_WORKER_ID", default=-1)
# The id generator class (chatproject/backends.py); the default follows ID_WORKER_ID.
ID_GENERATOR_BACKEND = "chat.ids.ProcessGenerator"

# --- Chat server registry (chat/registry/, docs/operations.md "Load balancer") --------------
# The WebSocket URL this process advertises to clients (manage.py serve: ws://host:port/ws/
# unless set); empty: the process does not register. Records live CHAT_SERVER_TTL seconds
# and are refreshed every CHAT_SERVER_HEARTBEAT; clients are steered to their zone first
# (CHAT_ZONE_HEADER, set by the load balancer, e.g. X-Client-Zone).
CHAT_SERVER_WS_URL = env.str("CHAT_SERVER_WS_URL", default="")
# After SIGTERM, how long a server process waits for its clients to leave (chatproject/
# lifecycle.py) before it closes the rest and exits.
DRAIN_TIMEOUT = env.float("DRAIN_TIMEOUT", default=20.0)
CHAT_SERVER_ZONE = env.str("CHAT_SERVER_ZONE", default="")
# Origins of the advertised WebSocket URLs the web app may connect to (its page's CSP
# connect-src), e.g. "wss://*.chat.example.com"; a server named by discovery outside them
# is skipped by the browser and the app uses /ws/ on its own host instead.
WEB_SOCKET_ORIGINS = env.list("WEB_SOCKET_ORIGINS", default=[])
CHAT_SERVER_HEARTBEAT = env.float("CHAT_SERVER_HEARTBEAT", default=5.0)
CHAT_SERVER_TTL = env.float("CHAT_SERVER_TTL", default=15.0)
CHAT_ZONE_HEADER = env.str("CHAT_ZONE_HEADER", default="X-Client-Zone")
# CHAT_SERVER_REGISTRY_PREFIX keeps deployments (or test runs) sharing one Redis apart.
CHAT_SERVER_REGISTRY_BACKEND: dict[str, Any] = (
    {
        "BACKEND": "chat.registry.redis.RedisRegistry",
        "OPTIONS": {"prefix": env.str("CHAT_SERVER_REGISTRY_PREFIX", default="chat:servers")},
    }
    if REDIS_URL
    else {"BACKEND": "chat.registry.memory.MemoryRegistry"}
)

# --- Presence (presence/, docs/architecture.md "Presence") ------------------------------------
# Clients send a frame (a ping when idle) every HEARTBEAT_INTERVAL seconds; a connection
# silent for PRESENCE_TIMEOUT seconds is closed and offline. Each process does its presence
# I/O once per PRESENCE_TICK seconds, so a device is offline at most TIMEOUT + TICK after
# its last frame, also when its server process died.
PRESENCE_HEARTBEAT_INTERVAL = env.int("PRESENCE_HEARTBEAT_INTERVAL", default=25)
PRESENCE_TIMEOUT = env.float("PRESENCE_TIMEOUT", default=60.0)
PRESENCE_TICK = env.float("PRESENCE_TICK", default=10.0)
# Dead networks (chatproject/listen.py): the kernel probes a client socket idle for
# TCP_KEEPALIVE_IDLE seconds every TCP_KEEPALIVE_INTERVAL seconds and drops it after
# TCP_KEEPALIVE_COUNT unanswered probes (or data unacknowledged that long); 0 turns it off.
TCP_KEEPALIVE_IDLE = env.int("TCP_KEEPALIVE_IDLE", default=20)
TCP_KEEPALIVE_INTERVAL = env.int("TCP_KEEPALIVE_INTERVAL", default=5)
TCP_KEEPALIVE_COUNT = env.int("TCP_KEEPALIVE_COUNT", default=3)
# WebSocket protocol pings from uvicorn to every socket, in seconds (0: none). The kernel's
# keepalive above finds dead networks at no CPU cost to the process; these pings cost
# ~0.4% of a core per 1,000 idle sockets (docs/performance.md).
WS_PROTOCOL_PING_INTERVAL = env.float("WS_PROTOCOL_PING_INTERVAL", default=0.0)
PRESENCE_BACKEND = (
    "presence.backends.redis.RedisPresence"
    if REDIS_URL
    else "presence.backends.memory.MemoryPresence"
)

# --- Push notifications (notifications/, docs/operations.md "Push notifications") ----------
# Web Push: VAPID key pair (private key as PEM or base64url raw 32 bytes); unset: generated
# once into DATA_DIR/vapid_private_key.pem. The subject is a mailto: or https: contact.
VAPID_PRIVATE_KEY = env.str("VAPID_PRIVATE_KEY", default="")
VAPID_PUBLIC_KEY = env.str("VAPID_PUBLIC_KEY", default="")
VAPID_SUBJECT = env.str("VAPID_SUBJECT", default="mailto:admin@localhost")
# FCM: a service-account JSON file; unset disables FCM sends. FCM_ENDPOINT is only for tests
# and self-hosted relays that speak the FCM HTTP v1 API.
FCM_CREDENTIALS_FILE = env.str("FCM_CREDENTIALS_FILE", default="")
FCM_ENDPOINT = env.str("FCM_ENDPOINT", default="https://fcm.googleapis.com")
# A connected device that has not acknowledged a delivered event after this many seconds
# is pushed as if it were offline (the app may be suspended with its socket still open).
PUSH_UNACKED_DELAY = env.float("PUSH_UNACKED_DELAY", default=10.0)
PUSH_PREVIEW_LENGTH = env.int("PUSH_PREVIEW_LENGTH", default=200)
PUSH_TTL_SECONDS = env.int("PUSH_TTL_SECONDS", default=86_400)
# Retries of 429/5xx/network failures: exponential from the base, capped, Retry-After wins.
PUSH_MAX_ATTEMPTS = env.int("PUSH_MAX_ATTEMPTS", default=8)
PUSH_RETRY_BASE_SECONDS = env.float("PUSH_RETRY_BASE_SECONDS", default=2.0)
PUSH_RETRY_MAX_SECONDS = env.float("PUSH_RETRY_MAX_SECONDS", default=900.0)
PUSH_DELIVERY_RETENTION_HOURS = env.int("PUSH_DELIVERY_RETENTION_HOURS", default=48)
# Web Push endpoints must be https URLs of public hosts (the server POSTs to whatever URL a
# client registers; notifications/endpoints.py). True: also plain http, IP literals and
# loopback/private addresses, for local test receivers only (a deploy check warns).
PUSH_ALLOW_HTTP_ENDPOINTS = env.bool("PUSH_ALLOW_HTTP_ENDPOINTS", default=False)
# Only these Web Push hosts (comma-separated; ".push.services.mozilla.com" also matches its
# subdomains). Empty: any public host.
PUSH_ENDPOINT_HOSTS: list[str] = env.list("PUSH_ENDPOINT_HOSTS", default=[])

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
