"""Turn-taking on speech with pauses, through a simulated call on the local stack: a caller
who pauses 450 ms mid-sentence is not cut off, a greeting gets a greeting back, and a
two-part question gets both answers. Times are the bench's business (``bench_turns``);
these assert behaviour only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.bench.bench_turns import BASE_ENV, outcomes
from tests.support.corpus import HOURS, PARKING, PRICE, Utterance, faq_answers, speak
from tests.support.env import start_up

pytestmark = pytest.mark.slow
TIMEOUT = 180

CALL = (
    Utterance(("Is there", "parking near you?"), (0.45,), (PARKING,)),
    Utterance(("Hi,", "what are your opening hours?"), (0.45,), (HOURS,)),
    Utterance(("What are your hours,", "and how much is a consultation?"), (0.45,), (HOURS, PRICE)),
    Utterance(("Hello there.",), (), ()),
)


async def test_pauses_do_not_split_turns_and_every_question_is_answered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from agent.tools.simulate import simulate_call
    from providers.config.loader import ProviderLoader
    from providers.config.settings import LoaderSettings

    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    start_up()
    frames = [await asyncio.to_thread(speak, u, "piper") for u in CALL]
    loader = ProviderLoader(LoaderSettings())
    try:
        result = await asyncio.wait_for(
            simulate_call(
                job_metadata="", caller_audio=frames, output=tmp_path / "call.wav", loader=loader
            ),
            TIMEOUT,
        )
    finally:
        await loader.aclose()

    judged = outcomes(result, CALL)
    transcript = [(t.role, t.text, t.at) for t in result.turns] + [
        (c.started_at, c.speech_end) for c in result.caller_turns
    ]
    assert [o.split for o in judged] == [False] * len(CALL), transcript
    users = [t for t in result.turns if t.role == "user"]
    assert len(users) == len(CALL), transcript  # one caller turn per utterance
    for o in judged[:3]:
        assert o.answered, (o.utterance.text, o.heard)
    # the two-part question: both answers, in the order asked
    both = judged[2].heard
    assert both.index(faq_answers()[HOURS]) < both.index(faq_answers()[PRICE])
    # a greeting is answered as one, not with an FAQ answer or an apology
    greeting = judged[3].heard
    assert greeting and not any(a in greeting for a in faq_answers().values()), greeting
    assert "sorry" not in greeting.lower(), greeting
