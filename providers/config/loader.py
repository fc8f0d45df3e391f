"""Loads an organization's providers from the backend, with a process-wide cache.

One request per org fetches all three kinds. The cache holds each org for
``PROVIDER_CACHE_TTL`` seconds and revalidates with ``If-None-Match``; concurrent jobs of
one org share a single in-flight request; when the backend fails, an expired copy is used
(stale-if-error) and then, in hybrid mode, the environment. After a failure the org's loads
take that fallback at once for ``PROVIDER_BACKEND_RETRY_AFTER`` seconds (a negative cache):
a backend that is down must not cost every new call the whole timeout again. 404 is an
answer, not a failure, and is never remembered. A ``providersVersion`` in the
job metadata that differs from the cached version forces a refetch, so a config change
reaches the next call without waiting out the TTL.

Jobs run on their own event loops (livekit's thread executor gives each job a loop), so
every backend request runs on one private loop thread owned by the loader: that is what
makes the pooled ``httpx.AsyncClient`` and the single flight truly process-wide. A cache
hit never leaves the caller's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from providers.bounded import Lru
from providers.config.backend import parse_response
from providers.config.env import env_kind, env_providers
from providers.config.org_id import ORG_ID_RULE, header_safe, valid_org_id
from providers.config.settings import LoaderSettings
from providers.errors import BackendError, ConfigError, InvalidOrgError, OrgNotFoundError, who
from providers.log import logger
from providers.types import PIPELINE_KINDS, ConfigSource, OrgProviders

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry:
    config: OrgProviders
    etag: str | None
    expires_at: float


@dataclass
class _Failure:
    """The org's last backend failure: until ``retry_at`` its loads do not ask again."""

    reason: str
    retry_at: float
    announced: bool = False
    """Whether the first load served without asking has been logged (once per window)."""


class ProviderLoader:
    def __init__(
        self,
        settings: LoaderSettings,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``environ``: where the environment config comes from (the worker passes its
        start-up copy; None reads the process environment at each use)."""
        self._settings = settings
        self._environ = environ
        self._clock = clock
        # bounded: a worker meets org ids for weeks (``LoaderSettings.max_orgs``)
        self._cache: Lru[str, _Entry] = Lru(settings.max_orgs)
        self._failures: Lru[str, _Failure] = Lru(settings.max_orgs)
        self._cache_lock = threading.Lock()
        self._io = _IoLoop()
        # touched only on the I/O loop
        self._inflight: dict[str, asyncio.Task[OrgProviders]] = {}
        self._client: httpx.AsyncClient | None = None
        self.backend_requests = 0
        """Requests sent to the backend (for tests and the benchmark)."""
        self.on_request: Callable[[float], None] | None = None
        """Told each backend request's seconds, whatever its outcome (metrics)."""

    @property
    def settings(self) -> LoaderSettings:
        return self._settings

    async def load(
        self, organization_id: str | None, *, providers_version: str | None = None
    ) -> OrgProviders:
        """The org's providers. Raises ``ProviderError`` only when no usable config exists."""
        if not organization_id or not self._settings.backend_url:
            return env_providers(organization_id, self._environ)
        if not valid_org_id(organization_id):
            raise InvalidOrgError(  # repr: the id may hold the newline that makes it invalid
                f"org {organization_id!r}: not a valid organization id ({ORG_ID_RULE}); "
                "refused like an unknown organization"
            )
        hit = self._cached(organization_id, providers_version)
        if hit is not None:
            return hit
        skipped = self._skip_backend(organization_id)
        if skipped is not None:
            return skipped
        return await self._io.run(self._single_flight(organization_id, providers_version))

    def _cached(self, org_id: str, providers_version: str | None) -> OrgProviders | None:
        with self._cache_lock:
            entry = self._cache.get(org_id)
        if entry is None or entry.expires_at <= self._clock():
            return None
        if providers_version is not None and providers_version != entry.config.version:
            return None  # the backend pushed a newer version through the job metadata
        return entry.config.model_copy(update={"source": ConfigSource.CACHE})

    async def _single_flight(self, org_id: str, providers_version: str | None) -> OrgProviders:
        hit = self._cached(org_id, providers_version)  # another request may just have landed
        if hit is not None:
            return hit
        task = self._inflight.get(org_id)
        if task is None and (skipped := self._skip_backend(org_id)) is not None:
            return skipped  # another request may just have failed
        if task is None:
            task = asyncio.create_task(self._refresh(org_id))
            self._inflight[org_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(org_id, None))
        return await asyncio.shield(task)

    async def _refresh(self, org_id: str) -> OrgProviders:
        with self._cache_lock:
            entry = self._cache.get(org_id)
        started = time.monotonic()
        try:
            return await asyncio.wait_for(self._fetch(org_id, entry), self._settings.timeout)
        except OrgNotFoundError:
            self._forget(org_id)
            raise
        except (httpx.LocalProtocolError, UnicodeEncodeError) as e:
            # built here, never sent: nothing about the backend, everything about the request —
            # the org's id, or else the worker's own settings (as a refused key would be)
            if not header_safe(org_id):
                self._forget(org_id)
                raise InvalidOrgError(
                    f"org {org_id!r}: no backend request can be built for this organization "
                    f"({type(e).__name__}); refused like an unknown organization"
                ) from None
            reason = (
                f"this worker cannot build the backend request ({type(e).__name__}): check "
                "AICO_INTERNAL_API_KEY"
            )
        except asyncio.TimeoutError:
            reason = f"no answer within {self._settings.timeout:g} s"
        except httpx.HTTPError as e:
            reason = f"{type(e).__name__}"
        except BackendError as e:
            reason = str(e)
        finally:
            if self.on_request is not None:
                self.on_request(time.monotonic() - started)
        with self._cache_lock:
            self._failures.put(org_id, _Failure(reason, self._clock() + self._settings.retry_after))
        return self._fallback(org_id, entry, reason)

    def _skip_backend(self, org_id: str) -> OrgProviders | None:
        """Inside the retry window after a failure: the fallback at once, no request.

        Logged once per window (the failure itself was logged with its reason); raises like
        a failed request when backend-only mode has nothing cached.
        """
        now = self._clock()
        with self._cache_lock:
            failure = self._failures.get(org_id)
            if failure is not None and failure.retry_at <= now:
                self._failures.pop(org_id)  # the window is over: forget it
                failure = None
            if failure is None:
                return None
            first, failure.announced = not failure.announced, True
            entry = self._cache.get(org_id)
        retry_in = round(failure.retry_at - now, 1)
        if first:
            logger.warning(
                "backend failed recently, using the fallback without asking it again until "
                "PROVIDER_BACKEND_RETRY_AFTER has passed",
                extra={"org": org_id, "reason": failure.reason, "retry_in": retry_in},
            )
        return self._fallback(org_id, entry, failure.reason, retry_in=retry_in)

    def _fallback(
        self, org_id: str, entry: _Entry | None, reason: str, *, retry_in: float | None = None
    ) -> OrgProviders:
        """Stale cache, then (hybrid) the environment; ``retry_in`` set = no request was made
        (inside the retry window), so nothing is logged again."""
        log = logger.debug if retry_in is not None else logger.warning
        why = {"org": org_id, "reason": reason, "retry_after": self._settings.retry_after}
        if entry is not None:
            log(
                "backend unavailable, using the cached config past its TTL",
                extra={**why, "version": entry.config.version},
            )
            return entry.config.model_copy(update={"source": ConfigSource.STALE_CACHE})
        if self._settings.env_fallback:
            log("backend unavailable, using the environment config", extra=why)
            return env_providers(org_id, self._environ)
        not_asked = (
            f"; not asked again for {retry_in:g} s, PROVIDER_BACKEND_RETRY_AFTER"
            if retry_in is not None
            else ""
        )
        raise BackendError(
            f"{who(org_id)}backend unavailable ({reason}{not_asked}) and nothing cached; "
            "PROVIDER_ENV_FALLBACK=false forbids the environment config"
        )

    async def _fetch(self, org_id: str, entry: _Entry | None) -> OrgProviders:
        s = self._settings
        assert s.providers_url is not None
        # identity encoding: the size cap must count what the backend sends, not a gzip bomb
        headers = {
            "X-Organization-Id": org_id,
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        if s.internal_api_key is not None:
            headers["Authorization"] = f"Bearer {s.internal_api_key.get_secret_value()}"
        tag = entry.etag or entry.config.version if entry is not None else None
        if tag and header_safe(tag):  # the backend's own version: never let it break the request
            headers["If-None-Match"] = tag
        self.backend_requests += 1
        async with self._http().stream("GET", s.providers_url, headers=headers) as resp:
            if resp.status_code == 304 and entry is not None:
                return self._store(org_id, entry.config, entry.etag, revalidated=True)
            _check_status(resp.status_code, org_id)
            body = await _read_capped(resp, s.max_body_bytes, org_id)
            etag = resp.headers.get("ETag")
        config = self._complete(parse_response(body, org_id, etag))
        logger.info(
            "loaded provider config from the backend",
            extra={"org": org_id, "version": config.version, "chains": config.summary()},
        )
        return self._store(org_id, config, etag, revalidated=False)

    def _complete(self, config: OrgProviders) -> OrgProviders:
        """Fill kinds the backend left empty from the environment (hybrid) or fail."""
        missing = [k for k in PIPELINE_KINDS if not config.chain(k)]
        if not missing:
            return config
        if not self._settings.env_fallback:
            kinds = ", ".join(k.value for k in missing)
            raise ConfigError(
                f"{who(config.organization_id)}no enabled, known {kinds} provider in the "
                "backend config; enable one for this organization"
            )
        logger.warning(
            "backend config has no usable provider for some kinds, using the environment",
            extra={"org": config.organization_id, "kinds": [k.value for k in missing]},
        )
        fill = {k.value: env_kind(k, self._environ) for k in missing}
        return config.model_copy(update=fill)

    def _store(
        self, org_id: str, config: OrgProviders, etag: str | None, *, revalidated: bool
    ) -> OrgProviders:
        entry = _Entry(config, etag, self._clock() + self._settings.cache_ttl)
        with self._cache_lock:
            self._cache.put(org_id, entry)
            self._failures.pop(org_id)
        source = ConfigSource.CACHE if revalidated else ConfigSource.BACKEND
        return config.model_copy(update={"source": source})

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self._settings
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(s.timeout, connect=s.connect_timeout),
                limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
                follow_redirects=False,
            )
        return self._client

    def _forget(self, org_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(org_id)
            self._failures.pop(org_id)

    def invalidate(self, organization_id: str | None = None) -> None:
        """Forget the cached config and any remembered failure: the next load asks."""
        with self._cache_lock:
            if organization_id is None:
                self._cache.clear()
                self._failures.clear()
            else:
                self._cache.pop(organization_id)
                self._failures.pop(organization_id)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await self._io.run(client.aclose())
        self._io.stop()


def _check_status(status: int, org_id: str) -> None:
    if status == 200:
        return
    if status == 404:
        raise OrgNotFoundError(
            f"{who(org_id)}the backend does not know this organization (HTTP 404); "
            "check the organizationId in the dispatch or room metadata"
        )
    if status in (401, 403):
        raise BackendError(
            f"backend refused this worker (HTTP {status}): check AICO_INTERNAL_API_KEY"
        )
    raise BackendError(f"backend answered HTTP {status}")


async def _read_capped(resp: httpx.Response, cap: int, org_id: str) -> bytes:
    too_big = BackendError(
        f"{who(org_id)}backend answer is larger than {cap} bytes (PROVIDER_MAX_BODY_BYTES)"
    )
    declared = resp.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise too_big
    body = bytearray()
    async for chunk in resp.aiter_bytes():
        body += chunk
        if len(body) > cap:
            raise too_big
    return bytes(body)


class _IoLoop:
    """A private event loop on a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro`` runs in an empty context, not a copy of the caller's: this loop outlives
        every call, and a handle or task born in a call's context keeps what that context
        holds (livekit's job context: the call's room, session and
        published track, and the track's native thread) alive after the call."""
        future: concurrent.futures.Future[T] = contextvars.Context().run(self._submit, coro)
        return await asyncio.wrap_future(future)

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        # the loop too is made here: its own wake-up handle keeps the context it was made in
        return asyncio.run_coroutine_threadsafe(coro, self._ensure())

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="provider-loader", daemon=True
                )
                self._thread.start()
            return self._loop

    def stop(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()


_default: ProviderLoader | None = None
_default_lock = threading.Lock()


def get_loader(settings: LoaderSettings, environ: Mapping[str, str]) -> ProviderLoader:
    """The process-wide loader, made on first use from the worker's start-up settings (every
    call passes the same ones; the first call's make it)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ProviderLoader(settings, environ=environ)
        return _default
