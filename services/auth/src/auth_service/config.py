"""The auth service's own settings, typed and read once (their meanings: ``servicekit.catalog``).

``AuthSettings.load`` is the one place auth reads a ``RAILGUARD_AUTH_*`` (or other auth-specific)
variable; the composition root and its commands take the typed object.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from servicekit.settings import Settings

from auth_service.adapters.password_hasher import Argon2Params
from auth_service.domain import RotationPolicy, SessionPolicy, ThrottlePolicy
from auth_service.domain.signup_policy import SignupPolicy
from auth_service.usecases import AuthConfig, ThrottlePolicies

__all__ = ["AuthSettings", "load_config"]


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Everything auth reads beyond the shared :class:`~servicekit.settings.Settings`."""

    config: AuthConfig
    """The use cases' policies (token lifetimes, throttles, sign-up, retention)."""
    argon2: Argon2Params
    hash_concurrency: int | None
    """Password hashes computed at once; None: one per CPU."""
    maintenance_seconds: float
    signing_kek: str = field(repr=False)
    """The legacy signing-key KEK (opens keys sealed before the KeyManager move); "" if unset."""

    @classmethod
    def load(cls, settings: Settings) -> AuthSettings:
        """Read and check every auth setting; a bad value stops start-up (``ValueError``)."""
        return cls(
            config=load_config(settings),
            argon2=Argon2Params(
                settings.get_int("AUTH_ARGON2_MEMORY_KIB", 19456),
                settings.get_int("AUTH_ARGON2_TIME_COST", 2),
                settings.get_int("AUTH_ARGON2_PARALLELISM", 1),
            ),
            hash_concurrency=settings.get_int("AUTH_HASH_CONCURRENCY", 0) or None,
            maintenance_seconds=settings.get_float("AUTH_MAINTENANCE_SECONDS", 60),
            signing_kek=settings.get("AUTH_SIGNING_KEK"),
        )


def load_config(settings: Settings) -> AuthConfig:
    """The use cases' configuration from the ``AUTH_*`` policy settings."""

    def seconds(name: str, default: float) -> dt.timedelta:
        return dt.timedelta(seconds=settings.get_float(name, default))

    access_ttl = seconds("AUTH_ACCESS_TOKEN_TTL_SECONDS", 600)
    step_up = min(seconds("AUTH_STEP_UP_MAX_AGE_SECONDS", 900), dt.timedelta(minutes=15))
    throttle = ThrottlePolicies(
        # DESIGN §4: never more than 100 failures per hour per account; only lower is allowed.
        login_account=ThrottlePolicy(
            hourly_cap=min(settings.get_int("AUTH_LOGIN_ACCOUNT_HOURLY_CAP", 100), 100)
        ),
        login_ip=ThrottlePolicy(
            free_failures=settings.get_int("AUTH_LOGIN_IP_FREE_FAILURES", 20),
            hourly_cap=settings.get_int("AUTH_LOGIN_IP_HOURLY_CAP", 300),
        ),
    )
    return AuthConfig(
        throttle=throttle,
        step_up_max_age=step_up,
        totp_issuer=settings.get("AUTH_TOTP_ISSUER", "Railguard"),
        deployment_audience=settings.get("AUTH_DEPLOYMENT_AUDIENCE", "railguard-agent-ui"),
        deployment_token_ttl=seconds("AUTH_DEPLOYMENT_TOKEN_TTL_SECONDS", 900),
        public_url=settings.get("PUBLIC_URL", "https://127.0.0.1:8443"),
        account_retention=dt.timedelta(days=settings.get_int("AUTH_ACCOUNT_RETENTION_DAYS", 30)),
        signup=SignupPolicy.parse(settings.get("SIGNUP_POLICY", "open")),
        issuer=settings.issuer,
        audience=settings.audience,
        access_token_ttl=access_ttl,
        sessions=SessionPolicy(
            idle=seconds("AUTH_REFRESH_IDLE_SECONDS", 14 * 86400),
            absolute=seconds("AUTH_REFRESH_ABSOLUTE_SECONDS", 30 * 86400),
            grace=seconds("AUTH_REFRESH_GRACE_SECONDS", 10),
        ),
        rotation=RotationPolicy(
            interval=seconds("AUTH_KEY_ROTATION_SECONDS", 30 * 86400),
            jwks_cache=seconds("AUTH_JWKS_CACHE_SECONDS", 600),
            access_token_ttl=access_ttl,
        ),
    )
