"""Speech-to-speech calls: answered by a realtime model (the Realtime stand-in, driven by
livekit's own engine), and carried on by the org's pipeline, in the same call, when the
model cannot serve — with the conversation so far."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent.tools.caller_audio import say
from agent.tools.transcript import CallResult
from providers.catalogue import provider_config
from providers.chains import HealthKeys, get_health
from tests.standins.faults import Fault
from tests.standins.openai_realtime import RealtimeStandin
from tests.support.env import start_up
from tests.support.realtime import FIRST, RT_REPLY, SECOND, fault_on_turn, realtime_rig

pytestmark = pytest.mark.slow

TIMEOUT = 90


def texts(result: CallResult, role: str) -> list[str]:
    return [t.text for t in result.turns if t.role == role]


def switches(result: CallResult) -> list[tuple[str, str, str]]:
    assert result.usage is not None
    return [(f["kind"], f["from"], f["to"]) for f in result.usage["failovers"]]


def realtime_keys(rt: RealtimeStandin, org: str = "acme", i: int = 0) -> HealthKeys:
    config = provider_config(
        provider="openai-realtime",
        kind="realtime",
        options={"baseUrl": rt.base_url, "voice": "marin"},
        secrets={"apiKey": SecretStr(f"sk-{org}-realtime-{i}")},
    )
    return HealthKeys.of(config, org)


@pytest.fixture(autouse=True)
def fresh_health(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REALTIME_FIRST_AUDIO_TIMEOUT", "1")
    get_health().reset()


async def test_a_realtime_call_is_answered_by_the_realtime_model(tmp_path: Path) -> None:
    async def run() -> None:
        async with realtime_rig(start_up()) as rig:
            rig.add_org("acme")
            result = await rig.call("acme", await say([FIRST, SECOND]), tmp_path / "c.wav")
            assert result.completed
            assert texts(result, "assistant") == [RT_REPLY, RT_REPLY]
            assert texts(result, "user") == [FIRST, SECOND]
            assert not rig.llm.chat_requests  # the pipeline never ran
            assert rig.rt.responses_done == 2
            assert result.usage is not None
            lines = result.usage["usage"]
            realtime = {line["model"]: line for line in lines if line["kind"] == "realtime"}
            assert set(realtime) == {"gpt-realtime", "gpt-4o-mini-transcribe"}
            model = realtime["gpt-realtime"]
            assert model["provider"] == "openai-realtime"
            assert model["inputAudioTokens"] > 0 and model["outputAudioTokens"] > 0
            assert model["inputTokens"] > 0 and model["cachedInputTokens"] > 0
            assert model["costUsd"] > 0
            assert realtime["gpt-4o-mini-transcribe"]["audioSeconds"] > 0  # caller transcript
            assert realtime["gpt-4o-mini-transcribe"]["costUsd"] > 0
            assert {line["kind"] for line in lines} <= {"realtime", "tts"}  # no STT, no LLM
            assert not switches(result)

    await asyncio.wait_for(run(), TIMEOUT)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.REFUSE, "APIConnectionError"),
        (Fault.STATUS_401, "APIStatusError (HTTP 401)"),
        (Fault.STATUS_500, "APIStatusError (HTTP 500)"),
    ],
)
async def test_a_realtime_model_down_at_connect_leaves_the_call_to_the_pipeline(
    tmp_path: Path, fault: Fault, reason: str
) -> None:
    """The call goes on, on the pipeline; the next call starts there without trying the
    model (its breaker is open), for every org when the endpoint is down."""

    async def run() -> None:
        async with realtime_rig(start_up(), heard_by_pipeline=(FIRST, SECOND)) as rig:
            rig.add_org("acme")
            rig.add_org("globex")
            await rig.rt.set_fault(fault)
            caller = await say([FIRST, SECOND])
            result = await rig.call("acme", caller, tmp_path / "a.wav")
            assert result.completed
            assert rig.rt.responses_done == 0
            assert texts(result, "user") == [FIRST, SECOND]
            # the pipeline answered both turns, the second with the first in its context
            assert texts(result, "assistant")[-1] == f"You asked: {FIRST}"
            assert len(rig.llm.chat_requests) == 2
            assert switches(result) == [("realtime", "openai-realtime", "pipeline")]
            assert result.usage is not None
            assert result.usage["failovers"][0]["error"].startswith(reason)
            assert get_health().is_down(realtime_keys(rig.rt))

            # the next call of this org does not connect to it at all
            sessions = len(rig.rt.sessions)
            again = await rig.call("acme", caller, tmp_path / "b.wav")
            assert texts(again, "assistant")[-1] == f"You asked: {FIRST}"
            assert len(rig.rt.sessions) == sessions
            assert not switches(again)  # it never started on it: nothing to switch from

            # another org with its own key: a dead endpoint is dead for it too; a
            # rejected key (401) is that key's alone
            other = await rig.call("globex", caller, tmp_path / "c.wav")
            assert texts(other, "assistant")[-1] == f"You asked: {FIRST}"
            tried = len(rig.rt.sessions) > sessions
            assert tried is (fault is Fault.STATUS_401)

    await asyncio.wait_for(run(), TIMEOUT)


@pytest.mark.parametrize("fault", [Fault.HANG, Fault.DROP_MID_STREAM])
async def test_a_realtime_model_failing_mid_call_hands_the_conversation_to_the_pipeline(
    tmp_path: Path, fault: Fault
) -> None:
    """The first turn is the realtime model's; on the second it hangs before its first
    audio, or drops its socket mid-reply. The pipeline answers that same turn — the caller
    does not repeat it — and knows what was asked before."""

    async def run() -> None:
        async with realtime_rig(start_up()) as rig:
            rig.add_org("acme")
            fault_on_turn(rig.rt, fault, 2)
            result = await rig.call("acme", await say([FIRST, SECOND]), tmp_path / "c.wav")
            assert result.completed
            replies = texts(result, "assistant")
            assert replies[0] == RT_REPLY
            assert replies[-1] == f"You asked: {FIRST}"
            assert len(rig.llm.chat_requests) == 1
            assert texts(result, "user") == [FIRST, SECOND]
            assert result.usage is not None
            kinds = {line["kind"] for line in result.usage["usage"]}
            assert {"realtime", "llm", "tts"} <= kinds  # billed on both sides of the switch
            assert switches(result) == [("realtime", "openai-realtime", "pipeline")]
            expected = "BudgetTimeout" if fault is Fault.HANG else "APIConnectionError"
            assert result.usage["failovers"][0]["error"].startswith(expected)

    await asyncio.wait_for(run(), TIMEOUT)


async def test_two_realtime_models_fall_back_to_each_other_first(tmp_path: Path) -> None:
    """Realtime → realtime is livekit's adapter: the second model answers, the pipeline
    is not needed."""

    async def run() -> None:
        async with realtime_rig(start_up()) as rig:
            rig.add_org("acme", realtime=2)
            await rig.rt.set_fault(Fault.STATUS_500)
            result = await rig.call("acme", await say([FIRST, SECOND]), tmp_path / "c.wav")
            assert texts(result, "assistant") == [RT_REPLY, RT_REPLY]
            assert rig.rt2.responses_done == 2
            assert not rig.llm.chat_requests
            assert switches(result) == [("realtime", "openai-realtime", "openai-realtime")]

    await asyncio.wait_for(run(), TIMEOUT)


async def test_a_hung_realtime_model_leaves_the_turn_to_the_next_one(tmp_path: Path) -> None:
    """No first audio in time: the second realtime model answers that same turn."""

    async def run() -> None:
        async with realtime_rig(start_up()) as rig:
            rig.add_org("acme", realtime=2)
            fault_on_turn(rig.rt, Fault.HANG, 2)
            result = await rig.call("acme", await say([FIRST, SECOND]), tmp_path / "c.wav")
            assert texts(result, "assistant") == [RT_REPLY, RT_REPLY]
            assert rig.rt.responses_done == 1 and rig.rt2.responses_done == 1
            assert not rig.llm.chat_requests
            assert switches(result) == [("realtime", "openai-realtime", "openai-realtime")]

    await asyncio.wait_for(run(), TIMEOUT)


async def test_a_recovered_realtime_model_serves_the_calls_after_its_cooldown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVIDER_COOLDOWN", "0.5")

    async def run() -> None:
        async with realtime_rig(start_up(), heard_by_pipeline=(FIRST, SECOND)) as rig:
            rig.add_org("acme")
            caller = await say([FIRST, SECOND])
            await rig.rt.set_fault(Fault.STATUS_500)
            failed = await rig.call("acme", caller, tmp_path / "a.wav")
            assert switches(failed) == [("realtime", "openai-realtime", "pipeline")]
            await rig.rt.set_fault(Fault.OK)
            await asyncio.sleep(0.6)  # the cool-down; then one call probes it
            result = await rig.call("acme", caller, tmp_path / "b.wav")
            assert texts(result, "assistant") == [RT_REPLY, RT_REPLY]
            assert not get_health().is_down(realtime_keys(rig.rt))

    try:
        await asyncio.wait_for(run(), TIMEOUT)
    finally:
        monkeypatch.delenv("PROVIDER_COOLDOWN")
        start_up()  # the worker's default cool-down again for the tests after this one
