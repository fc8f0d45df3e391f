"""Loader settings: small value objects with module-level defaults (as httpx's _config.py),
read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from providers.errors import ConfigError

DEFAULT_CACHE_TTL = 300.0
DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_TIMEOUT = 2.0
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_RETRY_AFTER = 5.0
PROVIDERS_PATH = "/api/providers/organization/enabled"


@dataclass(frozen=True)
class LoaderSettings:
    backend_url: str | None = None
    """``AICO_BACKEND_URL``; None means environment-only configuration."""
    internal_api_key: SecretStr | None = None
    env_fallback: bool = True
    """``PROVIDER_ENV_FALLBACK``: hybrid (True) or backend-only (False)."""
    cache_ttl: float = DEFAULT_CACHE_TTL
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    timeout: float = DEFAULT_TIMEOUT
    """Budget for the whole request, body included: a slow backend must not hold a caller."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    retry_after: float = DEFAULT_RETRY_AFTER
    """``PROVIDER_BACKEND_RETRY_AFTER``: seconds after a backend failure during which an org's
    loads use the fallback at once instead of each paying the timeout again (0 = always ask)."""

    @property
    def providers_url(self) -> str | None:
        return self.backend_url.rstrip("/") + PROVIDERS_PATH if self.backend_url else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LoaderSettings:
        env = os.environ if environ is None else environ
        key = env.get("AICO_INTERNAL_API_KEY")
        return cls(
            backend_url=env.get("AICO_BACKEND_URL") or None,
            internal_api_key=SecretStr(key) if key else None,
            env_fallback=env_bool(env, "PROVIDER_ENV_FALLBACK", True),
            cache_ttl=env_float(env, "PROVIDER_CACHE_TTL", DEFAULT_CACHE_TTL),
            connect_timeout=env_float(env, "PROVIDER_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
            timeout=env_float(env, "PROVIDER_TIMEOUT", DEFAULT_TIMEOUT),
            max_body_bytes=int(env_float(env, "PROVIDER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
            retry_after=env_float(env, "PROVIDER_BACKEND_RETRY_AFTER", DEFAULT_RETRY_AFTER),
        )


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE | _FALSE:
        return raw in _TRUE
    raise ConfigError(f"{name}={raw!r} is not a boolean: use true or false")


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} must not be negative")
    return value
