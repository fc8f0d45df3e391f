"""The factory builds real livekit plugin objects for every registry entry, in the right
adapter nesting, and reports unusable providers clearly (SPEC §4)."""

from __future__ import annotations

import asyncio

import pytest
from livekit.agents import llm, stt
from livekit.plugins import cartesia, deepgram, elevenlabs, openai, silero
from pydantic import SecretStr, ValidationError

from plugins.offline_llm import OfflineLLM
from plugins.piper_tts import TTS as PiperTTS
from plugins.whisper_stt import STT as WhisperSTT
from providers.catalogue import provider_config
from providers.catalogue.registry import REGISTRY
from providers.chains.build import build_chains, build_provider
from providers.chains.llm.guard import GuardedLLM
from providers.chains.stt.guard import GuardedSTT
from providers.chains.tts.fallback import ChainTTS
from providers.config.backend import describe
from providers.errors import ConfigError, MissingSecretError, ProviderUnavailableError
from providers.types import ConfigSource, OrgProviders, ProviderConfig, ProviderKind

STT_, LLM_, TTS_ = ProviderKind.STT, ProviderKind.LLM, ProviderKind.TTS
RT_ = ProviderKind.REALTIME
KEY = {"apiKey": SecretStr("test-key-not-real")}

# every registry entry → the livekit class it must produce (anthropic: optional plugin)
EXPECTED: dict[tuple[str, ProviderKind], tuple[type, dict[str, object]]] = {
    ("deepgram", STT_): (deepgram.STT, {}),
    ("openai", STT_): (openai.STT, {}),
    ("vosk", STT_): (stt.STT, {"host": "127.0.0.1", "port": 2700}),
    ("whisper", STT_): (WhisperSTT, {}),
    ("piper", TTS_): (PiperTTS, {}),
    ("elevenlabs", TTS_): (elevenlabs.TTS, {"voiceId": "abc"}),
    ("cartesia", TTS_): (cartesia.TTS, {}),
    ("openai", TTS_): (openai.TTS, {}),
    ("openai", LLM_): (openai.LLM, {"model": "gpt-4.1-mini"}),
    ("groq", LLM_): (openai.LLM, {}),
    ("gemini", LLM_): (openai.LLM, {}),
    ("azure-openai", LLM_): (openai.LLM, {"azureEndpoint": "https://example.openai.azure.com"}),
    ("openai-compatible", LLM_): (
        openai.LLM,
        {"base_url": "http://127.0.0.1:11434/v1", "model": "llama3.1"},
    ),
    ("offline", LLM_): (OfflineLLM, {}),
    ("openai-realtime", RT_): (openai.realtime.RealtimeModel, {}),
    ("azure-openai-realtime", RT_): (
        openai.realtime.RealtimeModel,
        {"azureEndpoint": "https://example.openai.azure.com", "azureDeployment": "gpt-realtime"},
    ),
}


def org_of(*configs: ProviderConfig, source: ConfigSource = ConfigSource.BACKEND) -> OrgProviders:
    by_kind = {k: tuple(c for c in configs if c.kind is k) for k in ProviderKind}
    return OrgProviders(
        organization_id="acme",
        stt=by_kind[STT_],
        llm=by_kind[LLM_],
        tts=by_kind[TTS_],
        source=source,
    )


def config(name: str, kind: ProviderKind, priority: int = 0, **options: object) -> ProviderConfig:
    spec = REGISTRY[(name, kind)]
    secrets = KEY if spec.secrets else {}
    return provider_config(
        provider=name, kind=kind, priority=priority, options=options, secrets=secrets
    )


def test_registry_is_fully_covered() -> None:
    assert set(REGISTRY) - {("anthropic", LLM_)} == set(EXPECTED)


@pytest.mark.parametrize("key", sorted(EXPECTED, key=str), ids=lambda k: f"{k[0]}-{k[1]}")
def test_builds_the_real_plugin(key: tuple[str, ProviderKind]) -> None:
    cls, options = EXPECTED[key]
    obj = build_provider(config(*key, **options), org_of())
    assert isinstance(obj, cls)


def test_anthropic_is_built_or_names_its_package() -> None:
    try:
        obj = build_provider(config("anthropic", LLM_), org_of())
    except ProviderUnavailableError as e:
        assert "pip install livekit-plugins-anthropic" in str(e)
    else:
        assert isinstance(obj, llm.LLM)


def test_options_reach_the_plugin() -> None:
    dg = build_provider(config("deepgram", STT_, model="nova-2", language="de"), org_of())
    assert dg.model == "nova-2"
    oai = build_provider(
        config("openai-compatible", LLM_, baseUrl="http://127.0.0.1:9/v1", model="qwen"), org_of()
    )
    assert oai.model == "qwen"
    piper = build_provider(config("piper", TTS_, host="127.0.0.1", timeout=0.5), org_of())
    assert piper._opts.timeout == 0.5  # no public accessor: the remote request budget


def test_chain_nesting_and_order() -> None:
    vad = silero.VAD.load()
    org = org_of(
        config("deepgram", STT_, 10),
        config("whisper", STT_, 5),
        config("elevenlabs", TTS_, 10),
        config("piper", TTS_, 1),
        config("openai", LLM_, 10),
    )
    chains = build_chains(org, vad=vad)
    assert isinstance(chains.stt, stt.FallbackAdapter)
    dg, whisper = chains.stt._stt_instances
    # every STT of a chain is guarded, so the caller's words go on to the next one; a
    # streaming STT with a fallback after it also gets the hang watchdog; a non-streaming
    # one is driven by the VAD through livekit's StreamAdapter
    assert isinstance(dg, GuardedSTT) and isinstance(dg.inner, deepgram.STT)
    assert dg.budget == 2.0 and dg.handover is not None
    assert isinstance(whisper, GuardedSTT) and whisper.budget is None
    assert whisper.handover is dg.handover
    assert isinstance(whisper.inner, stt.StreamAdapter)
    assert isinstance(whisper.inner.wrapped_stt, WhisperSTT)
    assert isinstance(chains.llm, llm.FallbackAdapter)
    guarded, offline = chains.llm._llm_instances
    assert isinstance(guarded, GuardedLLM) and isinstance(guarded.inner, openai.LLM)
    assert isinstance(offline, OfflineLLM)
    assert isinstance(chains.tts, ChainTTS)
    assert [type(m.tts) for m in chains.tts.members] == [elevenlabs.TTS, PiperTTS]
    # a budget hands over to the next provider; the last has nobody to hand over to
    assert [m.budget for m in chains.tts.members] == [2.0, None]
    assert chains.providers == {
        STT_: ["deepgram", "whisper"],
        LLM_: ["openai", "offline"],
        TTS_: ["elevenlabs", "piper"],
    }


def test_single_provider_is_not_wrapped_and_offline_always_ends_llm() -> None:
    chains = build_chains(org_of(config("deepgram", STT_), config("piper", TTS_)), vad=None)
    assert isinstance(chains.stt, deepgram.STT)
    assert isinstance(chains.tts, PiperTTS)
    assert isinstance(chains.llm, OfflineLLM)


def test_the_session_does_not_retry_a_chain_but_retries_a_lone_provider() -> None:
    """A chain has tried every member once; the session running it again would repeat that
    round in the caller's silence. One provider keeps livekit's retries."""
    from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

    vad = silero.VAD.load()
    lone = build_chains(org_of(config("deepgram", STT_), config("piper", TTS_)), vad=vad)
    chained = build_chains(
        org_of(
            config("deepgram", STT_, 10),
            config("whisper", STT_, 5),
            config("elevenlabs", TTS_, 10),
            config("piper", TTS_, 1),
            config("openai", LLM_, 10),
        ),
        vad=vad,
    )
    for chains, retries in ((lone, DEFAULT_API_CONNECT_OPTIONS.max_retry), (chained, 0)):
        options = chains.session_options
        for kind in (STT_, TTS_):
            assert getattr(options, f"{kind.value}_conn_options").max_retry == retries, kind
    # every LLM chain ends in the offline responder: always a chain
    assert chained.session_options.llm_conn_options.max_retry == 0
    assert lone.session_options.llm_conn_options.max_retry == DEFAULT_API_CONNECT_OPTIONS.max_retry
    # only the retries change: the session's timeouts are livekit's
    assert chained.session_options.stt_conn_options.timeout == DEFAULT_API_CONNECT_OPTIONS.timeout


def test_missing_secret_names_org_provider_and_secret() -> None:
    bare = provider_config(provider="deepgram", kind=STT_)
    with pytest.raises(MissingSecretError) as e:
        build_provider(bare, org_of())
    assert str(e.value).startswith("org 'acme': provider 'deepgram' (stt) needs secret 'apiKey'")
    with pytest.raises(MissingSecretError, match="set DEEPGRAM_API_KEY"):
        build_provider(bare, org_of(source=ConfigSource.ENV))


def test_bad_option_names_the_field_when_the_config_is_made() -> None:
    """Options are typed once, in ``provider_config``: a bad one never reaches the factory
    (``tests/providers/catalogue/test_typed_options.py``: how the loader and env config
    report it)."""
    with pytest.raises(ValidationError) as e:
        config("vosk", STT_, host="h", port="not-a-port")
    assert describe(e.value).startswith("options.port: Input should be a valid integer")
    assert "not-a-port" not in str(e.value)  # an input may be a secret: never echoed


def test_unusable_provider_is_left_out_and_chain_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    org = org_of(
        provider_config(provider="deepgram", kind=STT_, priority=9),
        config("piper", TTS_),
        config("whisper", STT_),
    )
    chains = build_chains(org, vad=silero.VAD.load())
    assert chains.providers[STT_] == ["whisper"]
    assert any("needs secret 'apiKey'" in s for s in chains.skipped)
    assert "provider left out of the chain" in caplog.text


def test_kind_with_nothing_usable_is_a_clear_error() -> None:
    org = org_of(provider_config(provider="deepgram", kind=STT_), config("piper", TTS_))
    with pytest.raises(ConfigError, match="org 'acme': no usable stt provider .*apiKey"):
        build_chains(org, vad=None)


def test_missing_vosk_model_is_unavailable_not_a_crash(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ProviderUnavailableError, match="make models"):
        build_provider(config("vosk", STT_), org_of())


def test_a_providers_own_budget_overrides_the_kinds(caplog: pytest.LogCaptureFixture) -> None:
    org = org_of(
        config("elevenlabs", TTS_, 10, voiceId="v", firstResultTimeout=0.75),
        config("cartesia", TTS_, 5),
        config("piper", TTS_, 1),
        config("deepgram", STT_),
    )
    chains = build_chains(org, vad=None)
    assert [m.budget for m in chains.tts.members] == [0.75, 2.0, None]  # type: ignore[attr-defined]
    assert "ignoring unknown provider options" not in caplog.text


async def test_closing_a_call_closes_every_provider_and_survives_a_bad_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    org = org_of(config("openai", LLM_, 10), config("deepgram", STT_), config("piper", TTS_))
    chains = build_chains(org, vad=None)
    guarded, _ = chains.llm._llm_instances
    client = guarded.inner._client  # the OpenAI plugin's own HTTP client, one per object

    async def broken() -> None:
        raise RuntimeError("sk-should-not-be-logged")

    chains.stt.aclose = broken  # type: ignore[method-assign]
    await asyncio.wait_for(chains.aclose(), 10)
    assert client.is_closed()
    (line,) = [r for r in caplog.records if r.getMessage() == "provider did not close cleanly"]
    assert line.provider == "deepgram" and line.error == "RuntimeError"  # type: ignore[attr-defined]
    assert "sk-should" not in caplog.text
