"""The offline responder: answers from the organization's FAQ with no network, the last
link of every LLM chain (``plugins.offline_llm``)."""

from __future__ import annotations

from typing import Any

from providers.catalogue.spec import LLM, BuildRequest, ProviderSpec

NAME = "offline"


def build(r: BuildRequest) -> Any:
    from plugins.offline_llm import OfflineLLM

    return OfflineLLM(
        faq=[(e.question, e.answer, e.keywords) for e in r.persona.faq],
        fallback_reply=r.persona.fallback,
    )


SPECS: tuple[ProviderSpec, ...] = (ProviderSpec(name=NAME, kind=LLM, build=build, local=True),)
