"""Typed settings from environment variables: one reader that notes every bad variable
instead of stopping at the first, so start-up reports them all, one line each. Used by every
settings group (the loader's, the failover budgets, the prices, the worker's); a leaf
module, so any of them can import it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

from pydantic import SecretStr

from providers.errors import ConfigError

T = TypeVar("T")

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
