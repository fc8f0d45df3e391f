"""Loader settings: small value objects with module-level defaults (as httpx's _config.py),
read once from the environment at start-up.

``EnvReader`` is how every settings group reads its variables: a bad value is noted and
its default stands in, so start-up names every bad variable at once instead of the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from pydantic import SecretStr

from providers.errors import ConfigError

T = TypeVar("T")

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
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> LoaderSettings:
        with env_reader(environ) as env:
            return cls(
                backend_url=env.text("AICO_BACKEND_URL"),
                internal_api_key=env.secret("AICO_INTERNAL_API_KEY"),
                env_fallback=env.flag("PROVIDER_ENV_FALLBACK", True),
                cache_ttl=env.number("PROVIDER_CACHE_TTL", DEFAULT_CACHE_TTL),
                connect_timeout=env.number("PROVIDER_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
                timeout=env.number("PROVIDER_TIMEOUT", DEFAULT_TIMEOUT),
                max_body_bytes=env.integer("PROVIDER_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
                retry_after=env.number("PROVIDER_BACKEND_RETRY_AFTER", DEFAULT_RETRY_AFTER),
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


class SettingsError(ConfigError):
    """Bad values in the environment, one line per variable (never a secret's value)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class EnvReader:
    """Typed reads of one environment mapping. A bad value is noted (its ``ConfigError``
    message names the variable) and the default used instead, so start-up can report every
    bad variable at once (``check``). Every name read is kept in ``names``: the settings'
    own list of the variables they read."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []
        self.names: list[str] = []

    def _raw(self, name: str) -> str | None:
        if name not in self.names:
            self.names.append(name)
        return self.environ.get(name)

    def text(self, name: str, default: str | None = None) -> str | None:
        """The value as set; empty means unset."""
        return self._raw(name) or default

    def secret(self, name: str) -> SecretStr | None:
        """A key: kept as ``SecretStr``, never validated, so never in a message."""
        value = self._raw(name)
        return SecretStr(value) if value else None

    def number(self, name: str, default: float) -> float:
        self._raw(name)
        return self.parse(lambda: env_float(self.environ, name, default), default)

    def integer(self, name: str, default: int) -> int:
        return int(self.number(name, default))

    def optional_integer(self, name: str) -> int | None:
        """None when unset (the library's own default applies)."""
        value = self.integer(name, 0)
        return value if (self.environ.get(name) or "").strip() else None

    def flag(self, name: str, default: bool) -> bool:
        self._raw(name)
        return self.parse(lambda: env_bool(self.environ, name, default), default)

    def choice(self, name: str, allowed: tuple[T, ...], default: T) -> T:
        """One of ``allowed`` (strings, or a ``str`` enum's members), case-insensitive."""
        raw = (self._raw(name) or "").strip().lower()
        if not raw:
            return default
        for option in allowed:
            if raw == str(getattr(option, "value", option)):
                return option
        known = ", ".join(str(getattr(o, "value", o)) for o in allowed)
        self.problems.append(f"{name}={raw!r}: use one of {known}")
        return default

    def value(self, name: str, parse: Callable[[str], T], default: T) -> T:
        """``parse(raw)`` of a set variable; it raises ``ConfigError`` naming the variable."""
        raw = (self._raw(name) or "").strip()
        return self.parse(lambda: parse(raw), default) if raw else default

    def parse(self, read: Callable[[], T], default: T) -> T:
        try:
            return read()
        except ConfigError as e:
            self.problems.append(str(e))
            return default

    def check(self) -> None:
        if self.problems:
            raise SettingsError(list(self.problems))


@contextmanager
def env_reader(environ: Mapping[str, str] | EnvReader) -> Iterator[EnvReader]:
    """The reader a settings group's ``from_env`` reads through. Given a plain mapping, the
    group's own problems are raised when it is done; given a reader, they are left in it
    for its owner (start-up) to report together with every other group's."""
    if isinstance(environ, EnvReader):
        yield environ
        return
    reader = EnvReader(environ)
    yield reader
    reader.check()
