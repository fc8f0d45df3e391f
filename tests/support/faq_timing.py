"""How long the offline responder takes with a big FAQ, as a call builds and uses it:
``.venv/bin/python -m tests.support.faq_timing [ENTRIES]`` (from the repository root).

Prints the first call's build (on the call's event loop), the next call's, and one turn's
match (the median and worst of nine; the first may wait for the index being built)."""

from __future__ import annotations

import random
import sys
import time

from providers.catalogue import build_provider, provider_config
from providers.types import AgentPersona, FaqEntry, OrgProviders, ProviderKind


def main(n: int) -> str:
    rng = random.Random(7)
    vocab = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8)) for _ in range(5000)
    ]
    faq = tuple(
        FaqEntry(
            question="What about " + " ".join(rng.sample(vocab, 6)) + "?",
            answer=f"Answer number {i}.",
            keywords=tuple(rng.sample(vocab, 3)),
        )
        for i in range(n)
    )
    org = OrgProviders(organization_id="big", version="1", agent=AgentPersona(faq=faq))
    config = provider_config(provider="offline", kind=ProviderKind.LLM)
    questions = [
        "Hello, what are your " + " ".join(rng.sample(vocab, 4)) + ", and do you have parking?",
        "I wanted to ask about the " + " ".join(rng.sample(vocab, 3)) + " please",
        "Can you tell me something about nothing in particular today",
    ]
    started = time.perf_counter()
    build_provider(config, org)
    first = time.perf_counter() - started
    started = time.perf_counter()
    responder = build_provider(config, org)
    second = time.perf_counter() - started
    turns = []
    for q in questions * 3:
        started = time.perf_counter()
        responder.answer(q)
        turns.append(time.perf_counter() - started)
    turns.sort()
    return (
        f"faq={n}: first call's build {first * 1000:.1f} ms, next call's {second * 1000:.1f} ms; "
        f"turn median {turns[len(turns) // 2] * 1000:.1f} ms, worst {turns[-1] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
