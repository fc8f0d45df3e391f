"""Loader settings: small value objects with module-level defaults (as httpx's _config.py),
read once from the environment at start-up (through ``providers.env_vars``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from pydantic import SecretStr

from providers.config.org_id import header_safe
from providers.env_vars import EnvReader, env_reader
from providers.errors import ConfigError

DEFAULT_CACHE_TTL = 300.0
DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_TIMEOUT = 2.0
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_RETRY_AFTER = 5.0
DEFAULT_MAX_ORGS = 1000
PROVIDERS_PATH = "/api/providers/organization/enabled"


def _backend_url(raw: str) -> str:
    """An http(s) URL with a host: a URL no request can be built from would otherwise pass
    for a backend outage on every call, and run every org on the environment's keys."""
    parsed = urlparse(raw)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or not header_safe(raw):
        raise ConfigError(f"AICO_BACKEND_URL={raw!r}: use an http:// or https:// URL")
    return raw


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
    max_orgs: int = DEFAULT_MAX_ORGS
    """``PROVIDER_CACHE_MAX_ORGS``: orgs whose config (and, apart, whose last backend
    failure) one process keeps; past it the least recently used is forgotten, and its next
    call asks the backend again."""

    @property
    def providers_url(self) -> str | None:
        return self.backend_url.rstrip("/") + PROVIDERS_PATH if self.backend_url else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> LoaderSettings:
        with env_reader(environ) as env:
            return cls(
                backend_url=env.value("AICO_BACKEND_URL", _backend_url, None),
                internal_api_key=env.secret("AICO_INTERNAL_API_KEY"),
                env_fallback=env.flag("PROVIDER_ENV_FALLBACK", True),
                cache_ttl=env.number("PROVIDER_CACHE_TTL", DEFAULT_CACHE_TTL),
                connect_timeout=env.number("PROVIDER_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
                timeout=env.number("PROVIDER_TIMEOUT", DEFAULT_TIMEOUT),
                max_body_bytes=env.integer("PROVIDER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
                retry_after=env.number("PROVIDER_BACKEND_RETRY_AFTER", DEFAULT_RETRY_AFTER),
                max_orgs=max(1, env.integer("PROVIDER_CACHE_MAX_ORGS", DEFAULT_MAX_ORGS)),
            )
