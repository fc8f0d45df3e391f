"""Fault injection into the LLM chain: the primary, an OpenAI-compatible stand-in on
127.0.0.1, refuses, answers 401/402/429/500, hangs, or drops mid-reply; the answer must come
from the fallback quickly, the shared breaker must record the right thing, the switch must
be logged once, and no key may reach a log line (SPEC §5, issue 5). Time bounds:
``tests.support.failover``."""

from __future__ import annotations

import asyncio

import pytest
from livekit.agents import APIConnectionError

from providers.chains.build import build_chains
from providers.chains.health import HealthKeys, HealthRegistry
from providers.types import FaqEntry
from tests.standins.faults import Fault
from tests.standins.openai import OpenAIStandin
from tests.support.failover import (
    BUDGET,
    FAILOVER,
    FAULTS,
    KEY_A,
    KEY_B,
    LIMIT,
    LLM_,
    SLOW,
    answer,
    assert_logged_once_without_keys,
    assert_switched,
    cfg,
    org_of,
)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
async def test_llm_fault_fails_over(fault: Fault, caplog: pytest.LogCaptureFixture) -> None:
    health = HealthRegistry()
    primary_reply = "Primary model speaking here."
    backup_reply = "The backup model answers this question."
    async with (
        OpenAIStandin(reply=primary_reply, fault=fault, chunk_words=2) as primary,
        OpenAIStandin(reply=backup_reply) as backup,
    ):
        a = cfg("openai", LLM_, 10, KEY_A, base_url=primary.base_url)
        b = cfg("groq", LLM_, 5, KEY_B, base_url=backup.base_url)
        chains = build_chains(org_of(a, b), vad=None, health=health, failover=FAILOVER)
        first, text = await asyncio.wait_for(answer(chains.llm, "Hello?"), LIMIT)

    # the primary was asked first (unless it refused the connection), the backup answered
    assert len(primary.chat_requests) == (0 if fault is Fault.REFUSE else 1)
    assert {r.api_key for r in backup.chat_requests} == {KEY_B}
    assert text.endswith(backup_reply)
    if fault is Fault.DROP_MID_STREAM:
        # what the primary said before it dropped, then the backup's answer
        said = text[: -len(backup_reply)]
        assert said and primary_reply.startswith(said) and said != primary_reply, text
    else:
        assert text == backup_reply
        assert first < (BUDGET + SLOW if fault is Fault.HANG else SLOW)
    assert_switched(health, a, b, fault)
    assert_logged_once_without_keys(caplog, "openai", "groq")


async def test_every_llm_down_the_offline_responder_answers() -> None:
    faq = (FaqEntry(question="opening hours", answer="We open at nine."),)
    async with OpenAIStandin(fault=Fault.REFUSE) as a, OpenAIStandin(fault=Fault.HANG) as b:
        org = org_of(
            cfg("openai", LLM_, 10, KEY_A, base_url=a.base_url),
            cfg("groq", LLM_, 5, KEY_B, base_url=b.base_url),
            faq=faq,
        )
        chains = build_chains(org, vad=None, health=HealthRegistry(), failover=FAILOVER)
        _, text = await asyncio.wait_for(answer(chains.llm, "What are your opening hours?"), LIMIT)
    assert text == "We open at nine."


async def test_a_skipped_llm_says_what_failed_and_when_it_is_tried_again() -> None:
    """livekit's adapter logs "<llm> recovery failed: <message>" when its recovery check
    meets our open breaker; the message must say why, not just "marked down"."""
    from livekit.plugins import openai

    from providers.chains.llm.guard import GuardedLLM

    now = [100.0]
    health = HealthRegistry(cooldown=30.0, clock=lambda: now[0])
    config = cfg("openai", LLM_, 10, KEY_A, base_url="http://127.0.0.1:9/v1")
    keys = HealthKeys.of(config)
    health.record_failure(keys, APIConnectionError())
    now[0] += 4
    inner = openai.LLM(api_key=KEY_A, base_url="http://127.0.0.1:9/v1")
    guard = GuardedLLM(inner, name="openai", keys=keys, health=health, budget=BUDGET)

    with pytest.raises(APIConnectionError) as err:
        await asyncio.wait_for(answer(guard, "Hello?"), LIMIT)

    message = str(err.value)
    assert "'openai' not asked: it failed 4 s ago (APIConnectionError)" in message
    assert "tries it again in 26 s (PROVIDER_COOLDOWN)" in message
    assert "the next LLM of the chain answers" in message
    assert KEY_A not in message
