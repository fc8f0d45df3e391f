"""An id that is not an organization's never runs on the worker's keys: the loader refuses
it like an unknown org in every mode — whether its pattern check or the request built for
it fails — and a backend version that could not go back in a header never breaks the org's
next request."""

from __future__ import annotations

import pytest

import providers.config.loader as loader_module
from providers.config.org_id import header_safe, valid_org_id
from providers.errors import BackendError, InvalidOrgError
from providers.types import ConfigSource
from tests.standins.backend import BackendServer
from tests.support.loader import ORG, FakeClock, MakeLoader, acme_body, within


@pytest.mark.parametrize("bad", ["acme\n", "acme\r\n", "acme\nX-Injected: 1", "", "-acme", "é"])
def test_the_whole_string_must_be_an_org_id(bad: str) -> None:
    assert not valid_org_id(bad)


def test_header_values_are_checked_whole() -> None:
    assert header_safe('"17"') and header_safe("W/17 a")
    assert not any(header_safe(v) for v in ("17\n", "17\r\n", " 17", "", "é"))


@pytest.mark.parametrize("env_fallback", [True, False], ids=["hybrid", "backend-only"])
async def test_a_trailing_newline_is_refused_not_an_outage(
    backend: BackendServer, make_loader: MakeLoader, env_fallback: bool
) -> None:
    loader = make_loader(backend.url, env_fallback=env_fallback)
    with pytest.raises(InvalidOrgError, match="not a valid organization id") as refused:
        await within(loader.load(f"{ORG}\n"))
    assert "\n" not in str(refused.value)  # no forged log line either
    assert backend.requests == [] and loader.backend_requests == 0


async def test_a_request_that_cannot_be_built_is_a_bad_org_not_an_outage(
    backend: BackendServer, make_loader: MakeLoader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever slips past the pattern: the request fails here, before the backend hears
    of it, and hybrid mode must not take that for an outage and serve the env keys."""
    monkeypatch.setattr(loader_module, "valid_org_id", lambda _: True)
    loader = make_loader(backend.url, env_fallback=True)
    for _ in range(2):  # not remembered as a backend failure either
        with pytest.raises(InvalidOrgError, match="no backend request can be built"):
            await within(loader.load(f"{ORG}\nX-Injected: 1"))
    assert backend.requests == []


async def test_a_version_unfit_for_a_header_is_not_sent_back(
    backend: BackendServer, make_loader: MakeLoader, clock: FakeClock
) -> None:
    backend.set_org(ORG, acme_body("17\n"), version="17")
    backend.behave(ORG, etag=False)  # the body's version is all the loader has to send back
    loader = make_loader(backend.url, cache_ttl=10.0)
    assert (await within(loader.load(ORG))).version == "17\n"
    clock.advance(11)
    again = await within(loader.load(ORG))  # revalidation asks without If-None-Match
    assert again.source is ConfigSource.BACKEND, again.source
    assert [r.if_none_match for r in backend.requests] == [None, None]


async def test_a_request_the_worker_s_own_key_breaks_is_the_worker_s_not_the_org_s(
    backend: BackendServer, make_loader: MakeLoader
) -> None:
    """The org is fine; the worker's key cannot go in a header: like a key the backend
    refuses (401), an outage of this worker's, named — not an unknown org."""
    loader = make_loader(backend.url, key=" odd key ", env_fallback=False)
    with pytest.raises(BackendError, match="cannot build the backend request.*INTERNAL_API_KEY"):
        await within(loader.load(ORG))
