"""A big FAQ is indexed once and matched by looking at the few entries that share a word
with the caller's sentence, off the call's event loop — with the same answers as scoring
every entry (``plugins.offline_llm.FaqIndex``)."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest
from livekit.agents import llm

import plugins.offline_llm as offline
from plugins.offline_llm import FaqIndex, OfflineLLM, words

ROOT = Path(__file__).resolve().parents[2]
DEMO = [
    (e["question"], e["answer"], tuple(e.get("keywords", ())))
    for e in json.loads((ROOT / "agent/data/demo_faq.json").read_text())
]
_rng = random.Random(11)
VOCAB = [
    "".join(_rng.choice("abcdefghijklmnoprstu") for _ in range(_rng.randint(3, 9)))
    for _ in range(3000)
]
BIG = [
    (f"What about {' '.join(_rng.sample(VOCAB, 5))}?", f"answer {i}", tuple(_rng.sample(VOCAB, 2)))
    for i in range(3000)
]


def slip(word: str) -> str:
    """One edit, as an STT slip would make (or none)."""
    if len(word) < 5:
        return word
    i = _rng.randrange(len(word))
    return _rng.choice([word[:i] + word[i + 1 :], word[:i] + "x" + word[i + 1 :], word + "s"])


def brute_force(index: FaqIndex, clause: list[str]) -> object:
    best, best_score = None, 0.0
    for entry in index.entries:
        if (score := entry.score(clause)) > best_score:
            best, best_score = entry, score
    return best


@pytest.mark.parametrize("faq", [DEMO, BIG], ids=["demo", "3000"])
def test_the_index_answers_as_scoring_every_entry_would(
    faq: list[tuple[str, str, tuple[str, ...]]],
) -> None:
    index = FaqIndex(faq)
    index.prepare()
    said = [w for q, _, k in faq for w in words(q) + list(k)]
    for _ in range(300 if len(faq) < 100 else 40):  # brute force is what is slow
        clause = [slip(w) for w in _rng.sample(said, _rng.randint(1, 6))]
        clause += _rng.sample(["do", "you", "have", "the", "park", "in", "what"], 2)
        assert index.best(clause) is brute_force(index, clause), clause


def test_a_turn_scores_a_few_entries_not_all(monkeypatch: pytest.MonkeyPatch) -> None:
    index = FaqIndex(BIG)
    index.prepare()
    scored = [0]
    score = offline._Entry.score

    def counting(self: offline._Entry, clause: list[str]) -> float:
        scored[0] += 1
        return score(self, clause)

    monkeypatch.setattr(offline._Entry, "score", counting)
    question, answer, _ = BIG[1234]
    assert OfflineLLM(faq=index).answer(question) == answer
    assert scored[0] < 100, scored[0]  # of 3000


async def test_matching_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    answer = OfflineLLM.answer

    def recording(self: OfflineLLM, message: str) -> str:
        threads.append(threading.get_ident())
        return answer(self, message)

    monkeypatch.setattr(OfflineLLM, "answer", recording)
    ctx = llm.ChatContext()
    ctx.add_message(role="user", content=DEMO[0][0])
    text = ""
    async with OfflineLLM(faq=DEMO).chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            text += chunk.delta.content if chunk.delta and chunk.delta.content else ""
    assert text == DEMO[0][1]
    assert threads and threading.get_ident() not in threads


def test_the_catalogue_indexes_an_faq_once_per_faq() -> None:
    from providers.catalogue.vendors.offline import faq_index
    from providers.types import FaqEntry

    faq = tuple(FaqEntry(question=q, answer=a, keywords=k) for q, a, k in DEMO)
    first = faq_index(faq)
    assert faq_index(tuple(FaqEntry(question=q, answer=a, keywords=k) for q, a, k in DEMO)) is first
    changed = (*faq[:-1], FaqEntry(question="Do you open on Sundays?", answer="No."))
    assert faq_index(changed) is not first


def test_an_faq_given_as_an_iterator_is_read_whole() -> None:
    responder = OfflineLLM(faq=iter(DEMO))
    assert responder.answer(DEMO[0][0]) == DEMO[0][1]
    assert DEMO[0][0].split("?")[0].lower() in responder.answer("zzz qqq")
