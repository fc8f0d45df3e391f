"""The offline responder: answers from the organization's FAQ with no network, the last
link of every LLM chain (``plugins.offline_llm``).

Its FAQ index is built once per FAQ and shared by every call of the worker that has the
same FAQ (an org's config version, or the environment's): a big FAQ costs its indexing
once, not on every call, and never on the call's event loop while the caller waits."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, overload

from providers.bounded import Lru
from providers.catalogue.spec import LLM, BuildRequest, ProviderSpec
from providers.types import FaqEntry

NAME = "offline"
MAX_INDEXES = 8
"""FAQ indexes one process keeps (one per distinct FAQ in use; about 15 MB for 3000 entries of
distinct words); the least recently used goes first, and is indexed again if a call needs it."""

_indexes: Lru[tuple[FaqEntry, ...], Any] = Lru(MAX_INDEXES)
_lock = threading.Lock()


def faq_index(faq: tuple[FaqEntry, ...]) -> Any:
    """The ``FaqIndex`` of ``faq``, built on first use."""
    from plugins.offline_llm import FaqIndex

    with _lock:
        found = _indexes.get(faq)
    if found is None:
        found = FaqIndex(_Items(faq))
        with _lock:
            _indexes.put(faq, found)
        # indexed beside the call, not on its event loop: ready before the caller's first
        # question in all likelihood (the greeting takes seconds); a turn before waits for it
        threading.Thread(target=found.prepare, name="faq-index", daemon=True).start()
    return found


class _Items(Sequence[tuple[str, str, tuple[str, ...]]]):
    """The FAQ as the plugin reads it, made when it reads it."""

    def __init__(self, faq: tuple[FaqEntry, ...]) -> None:
        self._faq = faq

    def __len__(self) -> int:
        return len(self._faq)

    @overload
    def __getitem__(self, i: int) -> tuple[str, str, tuple[str, ...]]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[tuple[str, str, tuple[str, ...]]]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [(e.question, e.answer, e.keywords) for e in self._faq[i]]
        e = self._faq[i]
        return (e.question, e.answer, e.keywords)


def build(r: BuildRequest) -> Any:
    from plugins.offline_llm import OfflineLLM

    return OfflineLLM(faq=faq_index(tuple(r.persona.faq)), fallback_reply=r.persona.fallback)


SPECS: tuple[ProviderSpec, ...] = (ProviderSpec(name=NAME, kind=LLM, build=build, local=True),)
