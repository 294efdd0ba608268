"""Settings, all read from the environment (see README "Configuration").

Without configuration the shop runs as production and refuses to start without its secrets.
`DEBUG=1` selects development with the embedded defaults: SQLite, Channels' in-memory channel
layer, the sandbox payment system mounted under /sandbox/ (`make run` sets it).
"""

import math
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated variable as a list, empty items dropped."""
    return [item for item in os.environ.get(name, default).split(",") if item]


def finite(text: str, kind: type[int] | type[float] = float) -> int | float | None:
    """`text` as a finite number of `kind`, or None."""
    try:
        number = kind(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def env_number(name: str, default: str, kind: type[int] | type[float] = int) -> int | float:
    """A numeric variable: refused, named, when it is not a number of its kind."""
    value = os.environ.get(name, default)
    number = finite(value, kind)
    if number is None:
        what = "a whole number" if kind is int else "a number"
        raise ImproperlyConfigured(f"{name} must be {what}, not {value!r}.")
    return number


def env_rates(name: str) -> dict[str, float]:
    """A number per payment provider, "alipay=10,stripe=25": refused, named, when an item is not
    a name, "=" and a number."""
    rates = {}
    for item in env_list(name):
        provider, _, rate = (part.strip() for part in item.partition("="))
        number = finite(rate)
        if not provider or number is None:
            raise ImproperlyConfigured(f"{name} items are provider=number, not {item!r}.")
        rates[provider] = number
    return rates


def env_required(name: str, dev_default: str, *, shortest: int = 16) -> str:
    """A secret production must be given: in development its default; in production refused,
    named, when missing, shorter than `shortest` or the development default."""
    value = os.environ.get(name)
    if not value and DEBUG:
        return dev_default
    if not value:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is false.")
    if not DEBUG and (len(value) < shortest or value == dev_default):
        raise ImproperlyConfigured(
            f"{name} is too weak for production: at least {shortest} characters, not the "
            "development default."
        )
    return value


DEBUG = env_bool("DEBUG", False)
# Django's own deploy check asks 50 characters of a secret key.
SECRET_KEY = env_required("SECRET_KEY", "dev-only-insecure-secret-key", shortest=50)
HOST = os.environ.get("HOST", "127.0.0.1")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or (
    ["127.0.0.1", "localhost", "[::1]", "testserver", HOST] if DEBUG else []
)
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is false.")

PORT = env_number("PORT", "8000")
# Where the payment system can reach the shop (the notify_url), and the sandbox's own address.
SITE_URL = os.environ.get("SITE_URL", f"http://{HOST}:{PORT}").rstrip("/")


def env_origins(name: str) -> list[str]:
    """Origins the shop trusts, as Channels' OriginValidator patterns: in production the shop's
    own (SITE_URL: scheme, host and port), in development any of ALLOWED_HOSTS (an entry without
    a scheme is a host)."""
    return env_list(name) or (ALLOWED_HOSTS if DEBUG else [SITE_URL])


INSTALLED_APPS = [
    # First, so that `runserver` is daphne's: pages and the status WebSocket, with autoreload.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "checkout",
    "sandbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The shopper's language: the set_language cookie, else the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "shop.urls"
ASGI_APPLICATION = "shop.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=0
    )
}
# On PostgreSQL each process draws its connections from a pool (Django's own), so that a burst of
# socket handshakes does not open a connection each. DATABASE_POOL_SIZE bounds each process's share
# of PostgreSQL's max_connections.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": 1,
            "max_size": env_number("DATABASE_POOL_SIZE", "8"),
            "timeout": 20,
        },
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the server, the sandbox's deliveries and the reconciler share the
    # file without "database is locked" errors.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

REDIS_URL = os.environ.get("REDIS_URL", "")
# channels_redis' layers, configured as its README shows. Pub/sub by default: no per-channel
# capacity to drop pushes at, and less per socket; a push it loses (a Redis restart) is caught up
# by the watchlist (checkout/watch.py). `REDIS_CHANNEL_LAYER=core` selects the core layer.
REDIS_LAYERS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
REDIS_CHANNEL_LAYER = os.environ.get("REDIS_CHANNEL_LAYER", "pubsub")
if REDIS_URL:
    if REDIS_CHANNEL_LAYER not in REDIS_LAYERS:
        raise ImproperlyConfigured(f"REDIS_CHANNEL_LAYER must be one of {sorted(REDIS_LAYERS)}.")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": REDIS_LAYERS[REDIS_CHANNEL_LAYER],
            # redis-py's pool allows 100 connections by default, too few for a burst of sockets
            # on the core layer (field notes: "Too many connections").
            "CONFIG": {"hosts": [{"address": REDIS_URL, "max_connections": 5000}]},
        }
    }
else:
    # One process only: the layer lives in it.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
# The compiled catalogues (.mo) are committed next to their .po, so no gettext tools are needed.
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# htmx and axe-core come from npm (package.json pins them) and are served as our own static files.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/axe-core", BASE_DIR / "node_modules" / "axe-core"),
]

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False

# HTTPS, on whenever DEBUG is off: the shop sits behind a TLS-terminating proxy (deploy/nginx.conf)
# that says so in X-Forwarded-Proto. HTTPS=0 serves plain HTTP (a test on loopback, say).
HTTPS = env_bool("HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_number("SECURE_HSTS_SECONDS", "31536000" if HTTPS else "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
# Preloading into browsers is hard to undo: a shop opts in, and `check --deploy` does not nag.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# Content-Security-Policy (Django's, django.middleware.csp): the pages run only the shop's own
# scripts, styles and images, inline none, and evaluate nothing; they connect only to the shop
# ('self' takes in ws:/wss: on the same host and port), and no one may frame them. The `data:`
# connections are htmx's, which shows the reconnecting notice that way rather than by eval
# (templates/checkout/order.html); a data: URL sends nothing anywhere. tests/browser/test_csp.py.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "connect-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# --- Payments -----------------------------------------------------------------------------------

# The providers the shopper can pay with, in the order the Pay buttons show them (contract 6):
# sandbox, alipay, wechatpay, stripe. Each listed one's settings below must be complete: a server
# refuses to start, naming the variable, and `manage.py check` reports it (checkout.gateways).
PAYMENT_PROVIDERS = env_list("PAYMENT_PROVIDERS", "sandbox")
# The sandbox payment system mounted under /sandbox/ (development), and the sandbox provider, the
# shop's client of it or of a payment system speaking its dialect at PAYMENT_GATEWAY_URL.
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", DEBUG)
# Where the sandbox may send its notifications.
SANDBOX_NOTIFY_ORIGINS = env_origins("SANDBOX_NOTIFY_ORIGINS")
PAYMENT_GATEWAY_URL = (
    os.environ.get("PAYMENT_GATEWAY_URL", f"{SITE_URL}/sandbox/").rstrip("/") + "/"
)
if SANDBOX_ENABLED or "sandbox" in PAYMENT_PROVIDERS:
    SANDBOX_API_KEY = env_required("SANDBOX_API_KEY", "sk_sandbox_dev_only")
    SANDBOX_NOTIFY_SECRET = env_required("SANDBOX_NOTIFY_SECRET", "whsec_sandbox_dev_only")
else:
    SANDBOX_API_KEY = SANDBOX_NOTIFY_SECRET = ""
# Alipay, WeChat Pay (API v3, public-key mode) and Stripe: key files hold PEM text; each *_URL
# defaults to the provider's production address (README "Taking real payments").
ALIPAY_APP_ID = os.environ.get("ALIPAY_APP_ID", "")
ALIPAY_PRIVATE_KEY_FILE = os.environ.get("ALIPAY_PRIVATE_KEY_FILE", "")
ALIPAY_PUBLIC_KEY_FILE = os.environ.get("ALIPAY_PUBLIC_KEY_FILE", "")
ALIPAY_GATEWAY_URL = os.environ.get("ALIPAY_GATEWAY_URL", "")
WECHATPAY_MCHID = os.environ.get("WECHATPAY_MCHID", "")
WECHATPAY_APPID = os.environ.get("WECHATPAY_APPID", "")
WECHATPAY_APIV3_KEY = os.environ.get("WECHATPAY_APIV3_KEY", "")
WECHATPAY_CERT_SERIAL = os.environ.get("WECHATPAY_CERT_SERIAL", "")
WECHATPAY_PRIVATE_KEY_FILE = os.environ.get("WECHATPAY_PRIVATE_KEY_FILE", "")
WECHATPAY_PUBLIC_KEY_ID = os.environ.get("WECHATPAY_PUBLIC_KEY_ID", "")
WECHATPAY_PUBLIC_KEY_FILE = os.environ.get("WECHATPAY_PUBLIC_KEY_FILE", "")
WECHATPAY_API_URL = os.environ.get("WECHATPAY_API_URL", "")
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_URL = os.environ.get("STRIPE_API_URL", "")
# Older secrets still accepted while a rotation is under way (comma-separated).
SANDBOX_NOTIFY_SECRETS_OLD = env_list("SANDBOX_NOTIFY_SECRETS_OLD")
# An HTTP proxy the calls to the payment system go through (http://[user:password@]host:port);
# none by default. HTTP_PROXY and HTTPS_PROXY are not read.
PAYMENT_GATEWAY_PROXY = os.environ.get("PAYMENT_GATEWAY_PROXY") or None
# How long the shop waits for the payment system when it starts or queries a payment (a start
# sent again on a new connection included: checkout.gateways.sandbox).
PAYMENT_GATEWAY_TIMEOUT = env_number("PAYMENT_GATEWAY_TIMEOUT", "10", float)
ORDER_PAYMENT_TTL = env_number("ORDER_PAYMENT_TTL", "900")
# Multiplies the sandbox's retry schedule (15 s, 15 s, 30 s, 3 min, ...); tests make it tiny.
SANDBOX_RETRY_SCALE = env_number("SANDBOX_RETRY_SCALE", "1", float)
# Seconds the sandbox's API waits before it answers each call (0): on loopback it answers in
# milliseconds, a real payment system's API across the internet in 0.1-0.5 s. For benchmarks and
# tests of the shop against a payment system that slow; the wait holds no thread.
SANDBOX_API_LATENCY = env_number("SANDBOX_API_LATENCY", "0", float)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # Warnings and errors of any library (a 500's traceback from django.request among them).
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "checkout": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "sandbox": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Instead of Django's default (console in DEBUG only, and mail to ADMINS, which are none).
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# A pending payment with no notification for this long is queried from the payment system, and
# again at this interval until it is settled or expires.
RECONCILE_QUERY_AFTER = env_number("RECONCILE_QUERY_AFTER", "60")
# How often the reconciler wakes up to look for due orders.
RECONCILE_INTERVAL = env_number("RECONCILE_INTERVAL", "5", float)
# The reconciler's calls per payment system: at most this many orders' queries started a second
# (0: no limit), and at most this many waiting for their answers at once.
RECONCILE_RATE = env_number("RECONCILE_RATE", "20", float)
# Per provider, where it differs: "alipay=10,stripe=25".
RECONCILE_RATES = env_rates("RECONCILE_RATES")
RECONCILE_MAX_IN_FLIGHT = env_number("RECONCILE_MAX_IN_FLIGHT", "10")
# Every this many seconds each server process checks, in one query, whether any order watched by
# one of its sockets changed without the socket hearing of it (a push the channel layer dropped).
WATCH_INTERVAL = env_number("WATCH_INTERVAL", "10", float)

# /metrics answers requests from these addresses, or carrying `Authorization: Bearer <token>` when
# METRICS_TOKEN is set; anyone else gets 403 (see README "Operating it").
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_ADDRS = env_list("METRICS_ALLOWED_ADDRS", "127.0.0.1,::1")

# The pages whose scripts may open the status stream.
WS_ALLOWED_ORIGINS = env_origins("WS_ALLOWED_ORIGINS")
# The status stream: the largest message a browser may send (it has nothing to say), and how many
# sockets each server process lets open (checkout/caps.py; 0: no limit): per shopper's session (a
# few tabs, two sockets each while one reconnects), per order, per client address (a ceiling for
# the thousands of shoppers behind one carrier-grade NAT), and in all (~40 KiB each: BENCHMARKS.md).
WS_MAX_MESSAGE_BYTES = env_number("WS_MAX_MESSAGE_BYTES", "4096")
WS_MAX_PER_SESSION = env_number("WS_MAX_PER_SESSION", "20")
WS_MAX_PER_ORDER = env_number("WS_MAX_PER_ORDER", "10")
WS_MAX_PER_CLIENT = env_number("WS_MAX_PER_CLIENT", "5000")
WS_MAX_SOCKETS = env_number("WS_MAX_SOCKETS", "20000")
# Behind a reverse proxy: trust its X-Forwarded-Proto for the scheme (daphne's `--proxy-headers`
# takes the client address from X-Forwarded-For: deploy/supervisord.conf).
PROXY_HEADERS = env_bool("PROXY_HEADERS", False)
if PROXY_HEADERS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# A push is best effort; it never holds up the answer to the payment system for longer than this.
PUSH_TIMEOUT = env_number("PUSH_TIMEOUT", "2", float)
