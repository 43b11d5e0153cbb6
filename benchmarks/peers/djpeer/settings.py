"""Settings of the Django peer; the database comes from ``PEER_DB`` (a PostgreSQL URL or a path)."""

import os
from urllib.parse import urlsplit

SECRET_KEY = os.environ.get("PEER_SECRET", "bench-only")
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "djpeer.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework_api_key",
    "djpeer",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",  # sets Content-Length
]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
# The same header Railguard reads.
API_KEY_CUSTOM_HEADER = "HTTP_X_API_KEY"

_db = os.environ.get("PEER_DB", "peer.sqlite3")
if _db.startswith("postgresql"):
    _url = urlsplit(_db)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _url.path.lstrip("/"),
            "USER": _url.username or "postgres",
            "HOST": _url.hostname or "127.0.0.1",
            "PORT": str(_url.port or 5432),
            "CONN_MAX_AGE": None,  # persistent connections, as a production deployment runs
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _db}}
