"""Rapport settings: everything that differs between a laptop and production comes from the
environment (see docs/configuration.md). With nothing set, Rapport runs on SQLite with an
in-database task queue, so `make demo` needs no services."""

import os
import sys
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RAPPORT_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("RAPPORT_DEBUG", False)
TESTING = "pytest" in sys.modules or env_bool("RAPPORT_TESTING")

_secret = os.environ.get("RAPPORT_SECRET_KEY")
if not _secret:
    if not (DEBUG or TESTING or env_bool("RAPPORT_DEV")):
        # A production process must never run with a guessable key.
        _secret_file = VAR_DIR / "secret_key"
        if not _secret_file.exists():
            import secrets

            _secret_file.write_text(secrets.token_urlsafe(64))
            _secret_file.chmod(0o600)
        _secret = _secret_file.read_text().strip()
    else:
        _secret = "rapport-insecure-dev-key-only-for-laptops-and-tests-0123456789"  # noqa: S105 — dev/test only
SECRET_KEY = _secret

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tasks",
    "django_tasks_db",
    "django_rq",  # provides `rqworker` for the Redis backend; inert without REDIS_URL
    "rapport.accounts",
    "rapport.core",
    "rapport.audit",
    "rapport.people",
    "rapport.sales",
    "rapport.activities",
    "rapport.conversations",
    "rapport.channels",
    "rapport.listening",
    "rapport.imports",
    "rapport.intelligence",
    "rapport.web",
    "rapport.api",
    "rapport.bench",
]

MIDDLEWARE = [
    "rapport.core.middleware.GZipMiddleware",  # first: compresses what the others produce
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "rapport.core.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "rapport.urls"
WSGI_APPLICATION = "rapport.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
# ModelBackend with the per-request user lookup in plain SQL (see accounts/backends.py).
AUTHENTICATION_BACKENDS = ["rapport.accounts.backends.AuthBackend"]
SESSION_ENGINE = "rapport.accounts.sessions"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------
# SQLite: WAL so readers never block the writer; synchronous=NORMAL survives an application
# crash (the WAL is fsynced at checkpoints) but may lose the last commits on power loss.
# Set RAPPORT_SQLITE_SYNC=FULL where power-loss durability matters more than write speed.
# IMMEDIATE transactions take the write lock up front, so two writers queue on busy_timeout
# instead of failing with "database is locked" when a read lock cannot be upgraded.
# mmap_size at SQLite's 2 GB ceiling: reads come straight from the OS page cache, shared by
# every worker, instead of read() copies into each connection's own cache (people list at 1M
# people: 14 → 12 ms of CPU).
_sqlite_sync = os.environ.get("RAPPORT_SQLITE_SYNC", "NORMAL").upper()
if _sqlite_sync not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
    _sqlite_sync = "NORMAL"
_default_db = f"sqlite:///{VAR_DIR / 'rapport.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", _default_db), conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0 if TESTING else 600
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            f"PRAGMA journal_mode=WAL; PRAGMA synchronous={_sqlite_sync}; PRAGMA foreign_keys=ON;"
            "PRAGMA cache_size=-65536; PRAGMA mmap_size=2147418112; PRAGMA temp_store=MEMORY;"
        ),
    }
    # Tests use an in-memory database (Django shares it with the live server for browser
    # tests), so parallel test runs never collide on a file.
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Background work (Django's tasks API) ---------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
RQ_QUEUES = {"default": {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 3600}}
if os.environ.get("RAPPORT_TASKS_IMMEDIATE"):
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# --- Security -------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
_https = env_bool("RAPPORT_HTTPS", False)
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SECURE_SSL_REDIRECT = _https and env_bool("RAPPORT_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = int(os.environ.get("RAPPORT_HSTS_SECONDS", "31536000" if _https else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _https
SECURE_HSTS_PRELOAD = _https
if env_bool("RAPPORT_BEHIND_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# A strict policy: only our own scripts and styles; no inline script anywhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- Uploads --------------------------------------------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
RAPPORT_IMPORT_MAX_BYTES = int(os.environ.get("RAPPORT_IMPORT_MAX_BYTES", str(200 * 1024 * 1024)))
MEDIA_ROOT = VAR_DIR / "media"
# Attachments bigger than this are quarantined while streaming (rapport.channels.media).
RAPPORT_MEDIA_MAX_BYTES = int(os.environ.get("RAPPORT_MEDIA_MAX_BYTES", str(25 * 1024 * 1024)))

LANGUAGE_CODE = "en"
TIME_ZONE = os.environ.get("RAPPORT_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise serves from finders in dev; it warns if this is missing
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

EMAIL_BACKEND = os.environ.get("RAPPORT_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("RAPPORT_SMTP_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("RAPPORT_SMTP_PORT", "25"))
DEFAULT_FROM_EMAIL = os.environ.get("RAPPORT_FROM_EMAIL", "rapport@localhost")
if TESTING:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Where optional heavy text models live on disk; never downloaded.
RAPPORT_MODEL_DIR = os.environ.get("RAPPORT_MODEL_DIR", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("RAPPORT_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}, "django.server": {"level": "WARNING"}},
}

# --- Inbox and connectors ---------------------------------------------------------------
# Outbound webhooks and pollers refuse private, loopback and link-local addresses (SSRF);
# tests and on-premises installs may allow them explicitly.
RAPPORT_WEBHOOK_ALLOW_PRIVATE = env_bool("RAPPORT_WEBHOOK_ALLOW_PRIVATE", False)
# (first hour, end hour, weekdays Monday=0) for routing rules' "business hours" condition.
RAPPORT_BUSINESS_HOURS = (
    int(os.environ.get("RAPPORT_BUSINESS_START", "9")),
    int(os.environ.get("RAPPORT_BUSINESS_END", "18")),
    tuple(int(d) for d in os.environ.get("RAPPORT_BUSINESS_DAYS", "0,1,2,3,4").split(",") if d.strip()),
)
