"""A call's switches (``providers.chains.events``): each one kept for the usage record,
logged once without the error's message, and told to the listeners that call was built
with; livekit's adapter events become switches to the next provider still up."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from livekit.agents import APIConnectionError, APIStatusError, utils

from providers.chains.events import Failover, FailoverLog, log_switches
from providers.types import ProviderKind

STT, TTS = ProviderKind.STT, ProviderKind.TTS


def test_a_switch_is_kept_logged_once_and_told_to_the_calls_listeners(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[tuple[Failover, str | None]] = []
    log = FailoverLog("acme", [lambda event, org: heard.append((event, org))])
    log.switch(TTS, "cartesia", "piper", APIStatusError("key sk-PLANTED refused", status_code=503))
    (event,) = log.events
    assert (event.kind, event.from_provider, event.to_provider) == (TTS, "cartesia", "piper")
    assert event.reason == "APIStatusError (HTTP 503)"  # the class and status, no message
    assert heard == [(event, "acme")]
    (line,) = [r for r in caplog.records if r.getMessage() == "provider failed, switching"]
    assert (line.org, line.reason) == ("acme", event.reason)  # type: ignore[attr-defined]
    assert "sk-PLANTED" not in caplog.text + repr(line.__dict__)


def test_listeners_belong_to_one_call() -> None:
    heard: list[Failover] = []
    FailoverLog("a", [lambda event, _: heard.append(event)])
    FailoverLog("b").switch(TTS, "cartesia", None, None)
    assert heard == []


def test_adapter_events_become_switches_to_the_next_provider_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    adapter: Any = utils.EventEmitter[str]()
    a, b, c = object(), object(), object()
    errors: dict[int, BaseException] = {0: APIConnectionError()}
    log = FailoverLog("acme")
    log_switches(adapter, ["a", "b", "c"], [a, b, c], failovers=log, kind=STT, reason_of=errors.get)

    def change(instance: object, available: bool) -> None:
        adapter.emit("stt_availability_changed", SimpleNamespace(stt=instance, available=available))

    change(a, False)
    change(b, False)
    change(a, True)
    change(c, False)
    assert [(e.from_provider, e.to_provider, e.reason) for e in log.events] == [
        ("a", "b", "APIConnectionError"),
        ("b", "c", "unavailable"),
        ("c", None, "unavailable"),  # nobody after c: a, back up, comes before it
    ]
    recovered = [r for r in caplog.records if r.getMessage() == "provider recovered"]
    assert [r.to for r in recovered] == ["a"]  # type: ignore[attr-defined]
