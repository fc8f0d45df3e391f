"""livekit's provider hooks reach every member of every chain through our wrappers
(``GuardedSTT``, ``EarlyDecodeAdapter``, ``GuardedLLM``, ``ChainTTS`` and the fallback
adapters): ``prewarm()``, which ``AgentSession`` calls on its STT, LLM and TTS when the
agent activity starts (``voice/agent_activity.py``) and on its LLM when it is constructed
(``voice/agent_session.py``), and the STT keyterm and conversation-context hooks.

A chain hiding a hook is a silent regression: nothing fails, the fallback just pays
connection set-up in the caller's silence, or recognizes the org's vocabulary worse."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from livekit.agents import (
    NOT_GIVEN,
    Agent,
    AgentSession,
    APIConnectionError,
    APIConnectOptions,
    ConversationItemAddedEvent,
    NotGivenOr,
    llm,
    stt,
    tts,
    utils,
)
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
from livekit.agents.utils import http_context

from agent.worker.prewarm import shared_vad
from providers.catalogue import ProviderSpec, provider_config, registry
from providers.chains.build import Chains, build_chains
from providers.chains.health import HealthRegistry
from providers.types import AgentPersona, OrgProviders, ProviderConfig, ProviderKind
from tests.standins.cartesia import CartesiaStandin
from tests.standins.elevenlabs import ElevenLabsStandin
from tests.standins.openai import OpenAIStandin

STT_, LLM_, TTS_ = ProviderKind.STT, ProviderKind.LLM, ProviderKind.TTS
TIMEOUT = 20.0
KEYTERMS = ["Harbor Clinic", "Dr. Okonkwo"]


# --- small real subclasses of livekit's bases that record the hooks --------------------


class _SilentStream(stt.RecognizeStream):
    async def _run(self) -> None:
        async for _ in self._input_ch:
            pass


class RecordingSTT(stt.STT):
    def __init__(self, *, streaming: bool) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(
                streaming=streaming, interim_results=False, keyterms=True, chat_context=True
            )
        )
        self.prewarmed = asyncio.Event()
        self.keyterms: list[str] = []
        self.items: list[ConversationItemAddedEvent] = []

    def prewarm(self) -> None:
        self.prewarmed.set()

    def _update_session_keyterms(self, keyterms: list[str]) -> None:
        self.keyterms = list(keyterms)

    def _push_conversation_item(self, ev: ConversationItemAddedEvent) -> None:
        self.items.append(ev)

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        raise APIConnectionError("not used here")

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return _SilentStream(stt=self, conn_options=conn_options)


class RecordingLLM(llm.LLM):
    """Prewarms the way a provider does: by overriding ``_prewarm_impl``, which livekit's
    ``LLM.prewarm`` schedules on the loop."""

    def __init__(self) -> None:
        super().__init__()
        self.prewarmed = asyncio.Event()

    async def _prewarm_impl(self) -> None:
        self.prewarmed.set()

    def chat(self, **kwargs: Any) -> llm.LLMStream:
        raise APIConnectionError("not used here")


class RecordingTTS(tts.TTS):
    def __init__(self) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False), sample_rate=16000, num_channels=1
        )
        self.prewarmed = asyncio.Event()

    def prewarm(self) -> None:
        self.prewarmed.set()

    def synthesize(self, text: str, *, conn_options: Any = None) -> tts.ChunkedStream:
        raise APIConnectionError("not used here")


@pytest.fixture
def recorders(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Registry entries that build recording providers: a streaming STT (guarded), a
    non-streaming one (early-decode adapter) and a last streaming one (bare); two LLMs
    (guarded; the offline responder ends the chain); two TTSs (the TTS chain)."""
    members: dict[str, Any] = {
        "stt-a": RecordingSTT(streaming=True),
        "stt-b": RecordingSTT(streaming=False),
        "stt-c": RecordingSTT(streaming=True),
        "llm-a": RecordingLLM(),
        "llm-b": RecordingLLM(),
        "tts-a": RecordingTTS(),
        "tts-b": RecordingTTS(),
    }
    for name, member in members.items():
        kind = ProviderKind(name.split("-")[0])
        spec = ProviderSpec(name=name, kind=kind, build=lambda _, m=member: m)
        monkeypatch.setitem(registry.REGISTRY, (name, kind), spec)  # type: ignore[arg-type]
    yield members


def recorder_org() -> OrgProviders:
    def chain(kind: ProviderKind, *names: str) -> tuple[ProviderConfig, ...]:
        return tuple(
            provider_config(provider=n, kind=kind, priority=len(names) - i)
            for i, n in enumerate(names)
        )

    return OrgProviders(
        organization_id="acme",
        stt=chain(STT_, "stt-a", "stt-b", "stt-c"),
        llm=chain(LLM_, "llm-a", "llm-b"),
        tts=chain(TTS_, "tts-a", "tts-b"),
        agent=AgentPersona(),
    )


def recorder_chains() -> Chains:
    chains = build_chains(recorder_org(), vad=shared_vad(), health=HealthRegistry())
    assert chains.providers == {
        STT_: ["stt-a", "stt-b", "stt-c"],
        LLM_: ["llm-a", "llm-b", "offline"],
        TTS_: ["tts-a", "tts-b"],
    }
    return chains


async def test_session_start_prewarms_every_member_and_sets_keyterms_on_every_stt(
    recorders: dict[str, Any],
) -> None:
    chains = recorder_chains()
    session: AgentSession[None] = AgentSession(
        stt=chains.stt,
        llm=chains.llm,
        tts=chains.tts,
        vad=shared_vad(),
        stt_context_options={"keyterms": KEYTERMS},
    )
    try:
        await asyncio.wait_for(session.start(agent=Agent(instructions="")), TIMEOUT)
        waits = [m.prewarmed.wait() for m in recorders.values()]
        await asyncio.wait_for(asyncio.gather(*waits), TIMEOUT)
    finally:
        await session.aclose()
    for name in ("stt-a", "stt-b", "stt-c"):
        assert recorders[name].keyterms == KEYTERMS, name


async def test_conversation_items_reach_every_stt(recorders: dict[str, Any]) -> None:
    chains = recorder_chains()
    assert chains.stt.capabilities.chat_context  # else livekit never forwards an item
    item = llm.ChatMessage(role="assistant", content=["Hello, Harbor Clinic."])
    chains.stt._push_conversation_item(ConversationItemAddedEvent(item=item))
    for name in ("stt-a", "stt-b", "stt-c"):
        assert [ev.item for ev in recorders[name].items] == [item], name


async def test_real_plugins_open_their_connections_on_prewarm() -> None:
    """The real OpenAI, Groq (OpenAI-compatible), ElevenLabs and Cartesia plugins in
    chains: prewarm reaches each stand-in, the fallbacks' too."""
    async with (
        http_context.open(),
        OpenAIStandin() as openai_api,
        OpenAIStandin() as groq_api,
        ElevenLabsStandin() as eleven_api,
        CartesiaStandin() as cartesia_api,
    ):

        def config(name: str, kind: ProviderKind, priority: int, **options: Any) -> Any:
            from pydantic import SecretStr

            return provider_config(
                provider=name,
                kind=kind,
                priority=priority,
                options=options,
                secrets={"apiKey": SecretStr("sk-test")},
            )

        org = OrgProviders(
            organization_id="acme",
            stt=(provider_config(provider="whisper", kind=STT_),),
            llm=(
                config("openai", LLM_, 10, base_url=openai_api.base_url),
                config("groq", LLM_, 5, base_url=groq_api.base_url),
            ),
            tts=(
                config("elevenlabs", TTS_, 10, base_url=eleven_api.base_url, voice_id="v"),
                config("cartesia", TTS_, 5, base_url=cartesia_api.base_url),
            ),
            agent=AgentPersona(),
        )
        chains = build_chains(org, vad=shared_vad(), health=HealthRegistry())
        chains.llm.prewarm()
        chains.tts.prewarm()
        await openai_api.wait_for_request("/models", TIMEOUT)
        await groq_api.wait_for_request("/models", TIMEOUT)
        await eleven_api.wait_for_request("/multi-stream-input", TIMEOUT)
        await cartesia_api.wait_for_request("/tts/websocket", TIMEOUT)
        assert not openai_api.chat_requests and not groq_api.chat_requests
        for member in chains.tts.members:  # type: ignore[attr-defined]
            await member.tts.aclose()  # ends the plugins' prewarm tasks
