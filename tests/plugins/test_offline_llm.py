"""The offline responder converses without inventing anything: small talk, every FAQ entry
a sentence asks for in order, tolerant matching, and a fallback that says what it knows."""

from __future__ import annotations

import asyncio
import json

import pytest
from livekit.agents import llm

from plugins.offline_llm import (
    ACK_REPLY,
    GOODBYE_REPLY,
    GREETING_REPLY,
    NO_FAQ_REPLY,
    THANKS_REPLY,
    OfflineLLM,
)
from providers.config.backend import parse_response
from providers.types import AgentPersona

HOURS = "We are open nine to five."
OFFICE = "Our office is at 42 Harbor Street."
PRICE = "A consultation costs forty dollars."
PARKING = "There is free parking behind the building."
FAQ = [
    ("What are your opening hours?", HOURS, ("open", "close")),
    ("Where is your office located?", OFFICE, ("address", "directions")),
    ("How much does a consultation cost?", PRICE, ("price", "fee")),
    ("Do you have parking?", PARKING, ("car",)),
]


@pytest.fixture
def responder() -> OfflineLLM:
    return OfflineLLM(faq=FAQ)


@pytest.mark.parametrize(
    ("said", "reply"),
    [
        ("Hello", GREETING_REPLY),
        ("Hi there!", GREETING_REPLY),
        ("Good morning", GREETING_REPLY),
        ("Thank you so much.", THANKS_REPLY),
        ("Okay.", ACK_REPLY),
        ("Bye!", GOODBYE_REPLY),
    ],
)
def test_small_talk(responder: OfflineLLM, said: str, reply: str) -> None:
    assert responder.answer(said) == reply


@pytest.mark.parametrize(
    ("said", "reply"),
    [
        ("Hi, what are your opening hours?", HOURS),  # a greeting with a question: the answer
        ("When do you close?", HOURS),  # a listed synonym
        ("what's the price", PRICE),  # synonym
        ("How much is it going to cost me?", PRICE),  # word forms
        ("Is there park in near you?", PARKING),  # Whisper's slip for "parking"
        ("Whats your adress?", OFFICE),  # a misspelt word, one edit away
        ("can I park my car there", PARKING),  # stem of parking
        ("Where are you?", OFFICE),  # the entry that asks "where"
        ("Where can I park?", PARKING),  # ... but a content word weighs more
    ],
)
def test_tolerant_matching(responder: OfflineLLM, said: str, reply: str) -> None:
    assert responder.answer(said) == reply


def test_every_question_of_a_sentence_is_answered_in_order(responder: OfflineLLM) -> None:
    said = "Do you have parking, and what are your opening hours? Also, what's the fee?"
    assert responder.answer(said) == f"{PARKING} {HOURS} {PRICE}"
    assert responder.answer("Do you have parking, and where are you?") == f"{PARKING} {OFFICE}"
    # the same entry asked twice is answered once
    assert responder.answer("What are your hours, and when do you open?") == HOURS


def test_nothing_matches_it_says_what_it_can_help_with(responder: OfflineLLM) -> None:
    reply = responder.answer("Can you recommend a good restaurant?")
    assert reply.startswith("I'm sorry, I don't have an answer to that.")
    assert "what are your opening hours" in reply and "how much does a consultation cost" in reply
    assert "try again" not in reply  # not an outage
    assert OfflineLLM(faq=FAQ, fallback_reply="Ask me about dentists.").answer("weather?") == (
        "Ask me about dentists."
    )
    assert OfflineLLM().answer("Anything?") == NO_FAQ_REPLY


def test_backend_persona_carries_keywords_and_fallback() -> None:
    body = {
        "organizationId": "acme",
        "version": "1",
        "providers": [],
        "agent": {
            "faq": [{"question": "Opening hours", "answer": HOURS, "keywords": ["schedule"]}],
            "fallback": "I only know our schedule.",
        },
    }
    persona = parse_response(json.dumps(body).encode(), "acme", "1").agent
    assert isinstance(persona, AgentPersona)
    assert persona.faq[0].keywords == ("schedule",)
    responder = OfflineLLM(
        faq=[(e.question, e.answer, e.keywords) for e in persona.faq],
        fallback_reply=persona.fallback,
    )
    assert responder.answer("what's your schedule") == HOURS
    assert responder.answer("do you sell bikes") == "I only know our schedule."


async def test_it_streams_through_livekits_llm_interface(responder: OfflineLLM) -> None:
    ctx = llm.ChatContext()
    ctx.add_message(role="user", content="Hello, do you have parking?")

    async def collect() -> str:
        async with responder.chat(chat_ctx=ctx) as stream:
            return "".join([c.delta.content or "" async for c in stream if c.delta])

    assert await asyncio.wait_for(collect(), 5) == PARKING
