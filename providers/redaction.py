"""One registry of the secrets this process knows, and one redaction function that every
output goes through: log records (``providers.log.RedactFilter``), ``providers --json``,
the status JSON and metric labels.

Masking by field name alone misses what matters most: providers (and proxies) echo a key,
or the headers that carried it, in the body of an error, and livekit's fallback adapters
log that body at WARNING. So a value is redacted wherever it appears: every secret this
process has been told about (``register``: each org config's keys as they are parsed, the
environment's keys, the internal API key, the LiveKit API secret), credentials in URLs
(``https://user:pass@host/…?api_key=…``), ``key: value`` pairs that name a credential,
and the ``body=`` livekit prints for a failed provider call.

Fingerprints of keys (breaker names) are HMACs under a per-worker salt: an unsalted hash
lets anyone holding a candidate key confirm it is in use.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as _random
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

MASK = "**********"
SECRET_LIKE = re.compile(r"key|secret|token|password|credential|authorization", re.IGNORECASE)
"""Field and option names whose values are never printed (``secret_name``)."""
MIN_SECRET_LENGTH = 8
"""Shorter values are not registered: masking every ``secret`` or ``1234`` in every line
would hide more than it protects (livekit-server --dev's secret is public anyway)."""

_NOT_SECRET = re.compile(r"tokens|keywords|keyterms|^keys$", re.IGNORECASE)
"""Counts and word lists, not credentials (``inputTokens``, ``max_tokens``, a log line's
``keys``: the names of a message's fields)."""
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@?#\"']+@")
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;][^=&\s#\"']*(?:key|secret|token|password|passwd|sig|signature|auth)"
    r"[^=&\s#\"']*=)[^&\s#\"']*",
    re.IGNORECASE,
)
_PAIR = re.compile(
    r"(?P<name>(?:[\w-]*api[_-]?key|[\w-]*secret|[\w-]*token|password|passwd|authorization)"
    r"[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|token|basic)\s+)?)"
    r"(?P<value>[^\s\"',;&}\]]{8,})",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(?P<name>(?:[Bb]earer|[Bb]asic|Token)\s+)[A-Za-z0-9._~+/=-]{8,}")
_ELIDED = re.compile(r"(?<![\w*.])[\w-]{4,}(?:\*{3,}|\.{3}|…)[\w-]{2,}")
"""A key as providers echo it, shortened (``sk-proj-abcd****wxyz``, ``sk-ab...wxyz``): a key
this process may never have been given, so only its shape gives it away."""
_BODY = re.compile(r"\bbody=.*?(?=, retryable=|\)$|$)", re.MULTILINE)
_SCALARS = (bool, int, float, type(None))


class SecretRegistry:
    """The secret values this process knows. Thread-safe: calls register theirs from job
    threads while others log."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def register(self, *values: str | SecretStr | None) -> None:
        plain = (v.get_secret_value() if isinstance(v, SecretStr) else v for v in values)
        new = {v for v in plain if v and len(v) >= MIN_SECRET_LENGTH} - self._values
        if not new:
            return
        with self._lock:
            self._values |= new
            longest_first = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, longest_first)))

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __repr__(self) -> str:
        return f"SecretRegistry({len(self._values)} secrets)"

    def mask(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(MASK, text) if pattern is not None else text


registry = SecretRegistry()
"""The process's one registry."""


def register(*values: str | SecretStr | None) -> None:
    """Never print these (values shorter than ``MIN_SECRET_LENGTH`` are ignored)."""
    registry.register(*values)


def register_environment(environ: Mapping[str, str]) -> None:
    """The values of every variable whose name says it holds a credential."""
    register(*(v for k, v in environ.items() if SECRET_LIKE.search(k)))


def option_secrets(options: Any) -> list[str]:
    """The string values of credential-named keys at any depth of ``options`` (a key
    someone put in ``config`` instead of ``secrets``)."""
    found: list[str] = []
    if isinstance(options, Mapping):
        for k, v in options.items():
            if secret_name(k) and isinstance(v, str):
                found.append(v)
            else:
                found += option_secrets(v)
    elif isinstance(options, (list, tuple)):
        for v in options:
            found += option_secrets(v)
    return found


def secret_name(name: object) -> bool:
    """A field or option name that may hold a credential (``apiKey``, ``xi-api-key``,
    ``token``, ``apiKeyHint`` …; not ``inputTokens`` or ``keywords``)."""
    return isinstance(name, str) and bool(SECRET_LIKE.search(name)) and not _NOT_SECRET.search(name)


def redact_text(text: str) -> str:
    """``text`` with every known secret, URL credential, credential pair, failed-call body
    and shortened key masked."""
    if not text:
        return text
    text = registry.mask(text)
    text = _BODY.sub("body=" + MASK, text)
    text = _ELIDED.sub(MASK, text)
    text = _USERINFO.sub(lambda m: m["scheme"] + MASK + "@", text)
    text = _QUERY_SECRET.sub(lambda m: m["name"] + MASK, text)
    text = _PAIR.sub(lambda m: m["name"] + MASK, text)
    return _BEARER.sub(lambda m: m["name"] + MASK, text)


def redact(value: Any) -> Any:
    """``value`` fit to print: strings through ``redact_text``, mappings with credential
    names masked at any depth, ``SecretStr`` masked; another object becomes its redacted
    ``str`` when that ``str`` holds a secret."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, Mapping):
        return {
            k: MASK if secret_name(k) and v not in (None, "") else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v) for v in value]
    try:
        text = str(value)
    except Exception:
        return value
    masked = redact_text(text)
    return masked if masked != text else value


def safe_url(url: str) -> str:
    """``url`` as shown to anyone: no userinfo, no query string, no fragment (org-configured
    endpoints carry keys there)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.scheme or not parts.netloc:
        return redact_text(url.split("?", 1)[0].split("#", 1)[0])
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def safe_urls(text: str) -> str:
    """``text`` with every URL in it as ``safe_url`` shows it, then redacted."""
    return redact_text(_URL.sub(lambda m: safe_url(m[0]), text))


# ---------------------------------------------------------------------- fingerprints

_salt: bytes = _random.token_bytes(16)


def configure_fingerprints(salt: str | SecretStr | None) -> None:
    """The worker's salt (``FINGERPRINT_SALT``, else one random per worker, passed to its
    job processes with the settings); None keeps this process's random one."""
    global _salt
    if isinstance(salt, SecretStr):
        salt = salt.get_secret_value()
    if salt:
        _salt = salt.encode()


def fingerprint(value: str) -> str:
    """A short keyed hash of a credential: equal keys match within a worker, and a
    candidate key cannot be confirmed without the salt."""
    return hmac.new(_salt, value.encode(), hashlib.sha256).hexdigest()[:16]


def new_salt() -> str:
    return _random.token_hex(16)


def registered(values: Iterable[str]) -> list[str]:
    """Which of ``values`` the registry knows (for tests and diagnostics)."""
    return [v for v in values if v in registry]


__all__ = [
    "MASK",
    "SECRET_LIKE",
    "SecretRegistry",
    "configure_fingerprints",
    "fingerprint",
    "new_salt",
    "option_secrets",
    "redact",
    "redact_text",
    "register",
    "register_environment",
    "registry",
    "safe_url",
    "safe_urls",
    "secret_name",
]
