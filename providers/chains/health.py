"""Process-wide provider health: circuit breakers shared by every call of this worker.

livekit's fallback adapters keep health per adapter instance, so every new call would
rediscover a dead primary. Here a failure in one call opens a breaker that the next calls
see at once: the factory orders their chains healthy-first, and an open provider fails in
microseconds instead of costing the caller a timeout. After ``cooldown`` one call probes it
again (half-open); success closes the breaker.

Breakers are keyed by what actually failed (``providers.chains.blame``): auth and quota
failures (401/402/403/429) by credential — a hash of the key, never the key — since one
org's exhausted key says nothing about another's; a failure the org's own config caused
(another 4xx, its own short budget) by that org's config, so one tenant cannot switch a
provider off for every tenant; connection, timeout and 5xx failures by endpoint.
"""

from __future__ import annotations

import enum
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from providers.bounded import Lru
from providers.chains.blame import Blame, blame
from providers.redaction import fingerprint
from providers.types import ProviderConfig

T = TypeVar("T")
DEFAULT_COOLDOWN = 30.0
MAX_BREAKERS = 4096
"""Breakers one worker process keeps (endpoints, credentials, org configs): past it the
least recently used is forgotten (a forgotten open one is found again by one call)."""


class BreakerState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"

    def __str__(self) -> str:
        return self.value


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class HealthKeys:
    """The breakers a provider config answers to: its endpoint (every org), its credential
    (every org with that key) and, when built for an org, that org's config of it."""

    endpoint: str
    credential: str | None
    kind: str = ""
    provider: str = ""
    config: str | None = None
    """``kind/provider@endpoint~org#hash``: this org's options and key for the provider. A
    changed config is a new breaker, so a fix takes effect on the next call."""
    own_timeouts: bool = False
    """The config set a provider timeout below its default (``Options.shortens_timeouts``)."""

    @classmethod
    def of(cls, config: ProviderConfig, org_id: str | None = None) -> HealthKeys:
        """``org_id``: the org whose call uses ``config`` (None: the worker's own)."""
        endpoint = f"{config.kind}/{config.provider}@{config.endpoint or 'default'}"
        key = config.secret("apiKey")
        credential = f"{config.kind}/{config.provider}#{fingerprint(key)}" if key else None
        what = json.dumps(
            [config.settings.model_dump(mode="json"), credential], sort_keys=True, default=str
        )
        own = f"{endpoint}~{org_id or '-'}#{_digest(what)}"
        return cls(
            endpoint,
            credential,
            config.kind.value,
            config.provider,
            own,
            own_timeouts=config.settings.shortens_timeouts(),
        )

    def all(self) -> tuple[str, ...]:
        return tuple(k for k in (self.endpoint, self.credential, self.config) if k is not None)

    def for_error(self, error: BaseException) -> str | None:
        """Which breaker a failure counts against (``blame``); None: none of these — a
        config failure of keys made without a config key is not held against the endpoint."""
        match blame(error, own_timeouts=self.own_timeouts):
            case Blame.CREDENTIAL if self.credential is not None:
                return self.credential
            case Blame.CONFIG:
                return self.config
            case _:
                return self.endpoint

    def scope(self, key: str) -> Blame:
        """Which of these breakers ``key`` is."""
        if key == self.config:
            return Blame.CONFIG
        return Blame.CREDENTIAL if key == self.credential else Blame.ENDPOINT


HealthListener = Callable[[HealthKeys, str, BreakerState, "BaseException | None"], None]
"""``(keys, breaker key, new state, error)`` after every recorded outcome."""


@dataclass
class _Breaker:
    state: BreakerState = BreakerState.CLOSED
    opened_at: float = 0.0
    reason: str = ""
    failures: int = 0
    probing: bool = False
    failed_at: float = 0.0
    """Unix time of the last failure (for the status route)."""
    kind: str = ""
    provider: str = ""


@dataclass(frozen=True)
class BreakerInfo:
    key: str
    state: BreakerState
    reason: str
    failures: int
    retry_in: float
    kind: str = ""
    provider: str = ""
    failed_at: float = 0.0


class HealthRegistry:
    def __init__(
        self,
        *,
        cooldown: float = DEFAULT_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
        limit: int = MAX_BREAKERS,
    ) -> None:
        self._cooldown = cooldown
        self._clock = clock
        self._breakers: Lru[str, _Breaker] = Lru(limit)
        self._lock = threading.Lock()
        self._listeners: list[HealthListener] = []

    def subscribe(self, listener: HealthListener) -> None:
        """Tell ``listener`` every outcome (metrics); called outside the registry's lock."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def _notify(self, keys: HealthKeys, key: str, error: BaseException | None) -> None:
        state = BreakerState.OPEN if error is not None else BreakerState.CLOSED
        for listener in list(self._listeners):
            listener(keys, key, state, error)

    def _state(self, key: str) -> BreakerState:
        b = self._breakers.peek(key)
        if b is None or b.state is BreakerState.CLOSED:
            return BreakerState.CLOSED
        if b.state is BreakerState.OPEN and self._clock() - b.opened_at >= self._cooldown:
            b.state, b.probing = BreakerState.HALF_OPEN, False
        return b.state

    def is_down(self, keys: HealthKeys) -> bool:
        """True while any of the provider's breakers is open (not yet due for a probe)."""
        with self._lock:
            return any(self._state(k) is BreakerState.OPEN for k in keys.all())

    def state_of(self, keys: HealthKeys) -> BreakerState:
        """The provider's worst breaker: open beats half-open beats closed."""
        with self._lock:
            states = {self._state(k) for k in keys.all()}
        for state in (BreakerState.OPEN, BreakerState.HALF_OPEN):
            if state in states:
                return state
        return BreakerState.CLOSED

    def allow(self, keys: HealthKeys) -> bool:
        """May a request go to this provider now? A half-open breaker admits one probe."""
        with self._lock:
            for key in keys.all():
                state = self._state(key)
                if state is BreakerState.OPEN:
                    return False
                if state is BreakerState.HALF_OPEN:
                    b = self._breakers.get(key)
                    assert b is not None  # half-open: it exists
                    if b.probing:
                        return False
                    b.probing = True
            return True

    def why_skipped(self, keys: HealthKeys) -> str:
        """Why ``allow`` refused, for a log line: what failed, how long ago, and when a call
        will try the provider again."""
        with self._lock:
            now = self._clock()
            for key in keys.all():
                b = self._breakers.get(key)
                state = self._state(key)
                if b is None or state is BreakerState.CLOSED:
                    continue
                ago = now - b.opened_at
                if state is BreakerState.OPEN:
                    retry_in = max(0.0, self._cooldown - ago)
                    calls = (
                        "this organization's calls skip it with this config"
                        if keys.scope(key) is Blame.CONFIG
                        else "every call skips it"
                    )
                    return (
                        f"it failed {ago:.0f} s ago ({b.reason}); {calls} until "
                        f"one call tries it again in {retry_in:.0f} s (PROVIDER_COOLDOWN)"
                    )
                if b.probing:
                    return f"it failed {ago:.0f} s ago ({b.reason}); another call is trying it now"
        return "it was just marked down"

    def register(self, keys: HealthKeys) -> None:
        """Track a provider a call uses, so the status route lists it while healthy too (its
        endpoint and credential; an org's config breaker appears once it failed)."""
        with self._lock:
            for key in (keys.endpoint, keys.credential):
                if key is not None:
                    self._breakers.setdefault(key, _Breaker(kind=keys.kind, provider=keys.provider))

    def release(self, keys: HealthKeys) -> None:
        """A request admitted as a half-open probe ended without a verdict (cancelled)."""
        with self._lock:
            for key in keys.all():
                if (b := self._breakers.get(key)) is not None:
                    b.probing = False

    def record_failure(self, keys: HealthKeys, error: BaseException) -> bool:
        """Open the breaker the failure belongs to; True when this opened it."""
        key = keys.for_error(error)
        if key is None:
            return False
        with self._lock:
            b = self._breakers.setdefault(key, _Breaker(kind=keys.kind, provider=keys.provider))
            was_open = b.state is BreakerState.OPEN
            b.state, b.opened_at, b.probing = BreakerState.OPEN, self._clock(), False
            b.reason, b.failures = describe_error(error), b.failures + 1
            b.failed_at = time.time()
        self._notify(keys, key, error)
        return not was_open

    def record_success(self, keys: HealthKeys) -> None:
        with self._lock:
            for key in keys.all():
                b = self._breakers.get(key)
                if b is not None:
                    b.state, b.probing, b.failures = BreakerState.CLOSED, False, 0
        for key in keys.all():
            self._notify(keys, key, None)

    def order(self, items: Iterable[T], keys: Callable[[T], HealthKeys]) -> list[T]:
        """Healthy (and probe-due) providers first, in their given order; open ones last,
        so a chain whose providers are all down still tries them."""
        healthy: list[T] = []
        down: list[T] = []
        for item in items:
            (down if self.is_down(keys(item)) else healthy).append(item)
        return healthy + down

    def snapshot(self) -> list[BreakerInfo]:
        with self._lock:
            now = self._clock()
            out = []
            for key in sorted(self._breakers.keys()):
                state = self._state(key)
                b = self._breakers.peek(key)
                assert b is not None
                retry_in = max(0.0, self._cooldown - (now - b.opened_at))
                out.append(
                    BreakerInfo(
                        key,
                        state,
                        b.reason,
                        b.failures,
                        retry_in if state is BreakerState.OPEN else 0.0,
                        b.kind,
                        b.provider,
                        b.failed_at,
                    )
                )
            return out

    def reset(self) -> None:
        with self._lock:
            self._breakers.clear()


def describe_error(error: BaseException) -> str:
    """A short, secret-free reason: the error class and, for HTTP errors, the status."""
    status = getattr(error, "status_code", None)
    name = type(error).__name__
    return f"{name} (HTTP {status})" if isinstance(status, int) and status > 0 else name


_registry: HealthRegistry | None = None
_registry_lock = threading.Lock()
_cooldown = DEFAULT_COOLDOWN


def get_health() -> HealthRegistry:
    """The worker's registry, shared by every call of this process."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = HealthRegistry(cooldown=_cooldown)
        return _registry


def configure_health(*, cooldown: float) -> None:
    """The worker registry's cool-down (``PROVIDER_COOLDOWN``), set once at start-up."""
    global _cooldown
    with _registry_lock:
        _cooldown = cooldown
        if _registry is not None:
            _registry._cooldown = cooldown
