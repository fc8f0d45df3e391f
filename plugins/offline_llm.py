"""The offline responder: the last link of every LLM chain.

It is not a language model and never invents a fact: every answer it gives is an FAQ
answer of the organization, or one of a few fixed small-talk lines. It needs no network and
no model, so when every real LLM of a chain is down (or on the local stack) the caller still
has a conversation:

- greetings, thanks, goodbyes and "okay" get a short reply;
- a sentence that asks several things ("what are your hours, and do you have parking?")
  gets every matching FAQ answer, in the order asked;
- matching tolerates word forms ("park" ~ "parking"), small STT slips ("park in" ~
  "parking", "adress" ~ "address") and the synonyms an FAQ entry lists (``keywords``);
- when nothing matches it says what it can help with, instead of sounding broken.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from livekit.agents import APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import shortuuid

GREETING_REPLY = "Hello! How can I help you?"
THANKS_REPLY = "You're welcome. Is there anything else I can help you with?"
GOODBYE_REPLY = "Thank you for calling. Goodbye!"
ACK_REPLY = "Sure. Is there anything else I can help you with?"
NO_FAQ_REPLY = "I'm sorry, I can't answer questions right now. Please call again a little later."

_WORD = re.compile(r"[a-z0-9']+")
_CLAUSES = re.compile(r"[.?!;,]+|\b(?:and|also|plus|then)\b")
_STOP_WORDS = frozenset(
    "a an and are at be been can could do does did for from have has how i in is it me my "
    "of on or our please the there to we what which who why will with would you "
    "your tell about any some this that these those get give know like want need just "
    "also much many more so if am was were us".split()
)
_CUES = frozenset("where when".split())
"""Question words that point at an entry asking them ("where are you?" → "Where is your
office?"), but weigh less than a content word ("where can I park?" → parking)."""
_GREETINGS = frozenset("hi hello hey hiya morning afternoon evening good there".split())
_THANKS = frozenset("thank thanks cheers appreciate".split())
_GOODBYES = frozenset("bye goodbye farewell".split())
_ACKS = frozenset("ok okay alright right great fine sure yes yeah good perfect".split())
_SUFFIXES = ("ing", "ed", "es", "s", "ly")


def stem(word: str) -> str:
    """A crude stem: 'parking' ~ 'park', 'hours' ~ 'hour', 'cancelled' ~ 'cancel'."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
                word = word[:-1]  # cancell -> cancel, stopp -> stop
            break
    return word


def words(text: str) -> list[str]:
    return [w.strip("'") for w in _WORD.findall(text.lower()) if w.strip("'")]


def keywords(text: str) -> set[str]:
    """Stems of the content words of ``text``."""
    return {stem(w) for w in words(text) if w not in _STOP_WORDS}


def _near(a: str, b: str) -> bool:
    """Within one edit, for words long enough that one edit is a slip, not another word."""
    if a == b:
        return True
    if min(len(a), len(b)) < 5 or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)) :] == b[i + 1 :]


@dataclass(frozen=True)
class _Entry:
    question: str
    answer: str
    stems: frozenset[str]
    raw: frozenset[str]
    """Unstemmed content words, for slips that split a word ('park in')."""

    def score(self, clause: list[str]) -> float:
        content = [w for w in clause if w not in _STOP_WORDS]
        found = {s for s in map(stem, content) if s in self.stems}
        for w in content:
            if stem(w) not in found and any(_near(w, r) for r in self.raw):
                found.add(stem(w))
        for a, b in zip(clause, clause[1:], strict=False):  # "park in" -> "parkin"
            joined = a + b
            if any(_near(joined, r) for r in self.raw if len(r) >= 6):
                found.add(joined)
        return sum(0.5 if w in _CUES else 1.0 for w in found)


class FaqIndex:
    """An FAQ ready to match, built once per FAQ (the catalogue keeps one per config):
    each entry's words, and where the entries a caller's word can match are — by stem, and
    by every one-letter deletion of each word (two words within one edit share one), so a
    turn scores only the few entries that share a word with it instead of comparing every
    word with every entry's (0.2-1.5 s per turn at a few thousand entries, on the call's
    event loop). Same answers as scoring them all: an entry left out scores 0.

    Built on first use, under a lock: by the first turn that needs it, off the event loop
    (``OfflineStream``), not while the call is being set up."""

    def __init__(self, faq: Iterable[tuple[str, str] | tuple[str, str, Sequence[str]]]) -> None:
        """``faq`` is read when the index is first used (an iterator is read now)."""
        self._source = faq if isinstance(faq, Sequence) else list(faq)
        self._built = False
        self._lock = threading.Lock()
        self.entries: list[_Entry] = []
        self._by_stem: dict[str, list[int]] = {}
        self._by_word: dict[str, list[int]] = {}
        self._variants: dict[str, list[str]] = {}  # a word or one deletion of it → words

    def prepare(self) -> None:
        """Build the index now (the catalogue does it on a thread of its own)."""
        self._ensure()

    def _ensure(self) -> None:
        with self._lock:
            if self._built:
                return
            for i, item in enumerate(self._source):
                question, answer = item[0], item[1]
                extra = " ".join(item[2]) if len(item) > 2 else ""
                raw = frozenset(w for w in words(f"{question} {extra}") if w not in _STOP_WORDS)
                entry = _Entry(question, answer, frozenset(map(stem, raw)), raw)
                self.entries.append(entry)
                for s in entry.stems:
                    self._by_stem.setdefault(s, []).append(i)
                for w in raw:
                    if w not in self._by_word:  # a word's variants once, however many use it
                        for v in _variants(w):
                            self._variants.setdefault(v, []).append(w)
                    self._by_word.setdefault(w, []).append(i)
            self._built = True

    def first_questions(self, n: int) -> list[str]:
        return [item[0] for item in itertools.islice(self._source, n)]

    def _near_words(self, word: str) -> set[str]:
        found: set[str] = set()
        for v in _variants(word):
            found |= {r for r in self._variants.get(v, ()) if _near(word, r)}
        return found

    def candidates(self, clause: list[str]) -> list[int]:
        """The entries that can score on ``clause`` (``_Entry.score``), in FAQ order."""
        out: set[int] = set()
        for w in clause:
            if w in _STOP_WORDS:
                continue
            out.update(self._by_stem.get(stem(w), ()))
            for r in self._near_words(w):
                out.update(self._by_word[r])
        for a, b in zip(clause, clause[1:], strict=False):
            for r in self._near_words(a + b):
                if len(r) >= 6:
                    out.update(self._by_word[r])
        return sorted(out)

    def best(self, clause: list[str]) -> _Entry | None:
        """The highest-scoring entry, the first of equals (as scoring every entry would)."""
        self._ensure()
        best, best_score = None, 0.0
        for i in self.candidates(clause):
            entry = self.entries[i]
            score = entry.score(clause)
            if score > best_score:
                best, best_score = entry, score
        return best


def _variants(word: str) -> set[str]:
    """``word`` and, when it is long enough for ``_near`` to forgive a slip, each string one
    deletion away: two words within one edit of each other share one of these."""
    out = {word}
    if len(word) >= 5:
        out.update(word[:i] + word[i + 1 :] for i in range(len(word)))
    return out


class OfflineLLM(llm.LLM[None]):
    def __init__(
        self,
        *,
        faq: FaqIndex | Iterable[tuple[str, str] | tuple[str, str, Sequence[str]]] = (),
        fallback_reply: str | None = None,
    ) -> None:
        """``faq``: (question, answer) or (question, answer, synonyms), or a ``FaqIndex`` of
        them built earlier. ``fallback_reply``: what to say when nothing matches; by default
        it names what it can answer."""
        super().__init__()
        self._index = faq if isinstance(faq, FaqIndex) else FaqIndex(faq)
        self._fallback_reply = fallback_reply or _what_i_can_do(self._index.first_questions(3))

    @property
    def model(self) -> str:
        return "faq-keyword-match"

    @property
    def provider(self) -> str:
        return "offline"

    def answer(self, message: str) -> str:
        """Every FAQ answer the message asks for, in order; else small talk; else what it
        can help with."""
        clauses = [words(c) for c in _CLAUSES.split(message.lower())]
        clauses = [c for c in clauses if c]
        answers: list[str] = []
        for clause in clauses:
            best = self._index.best(clause)
            if best is not None and best.answer not in answers:
                answers.append(best.answer)
        if answers:
            return " ".join(answers)
        said = {w for c in clauses for w in c}
        if said & _GOODBYES:
            return GOODBYE_REPLY
        if said & _THANKS:
            return THANKS_REPLY
        if said and said <= _GREETINGS | _STOP_WORDS:
            return GREETING_REPLY
        if said and said <= _ACKS | _GREETINGS | _STOP_WORDS:
            return ACK_REPLY
        return self._fallback_reply

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, object]] = NOT_GIVEN,
    ) -> OfflineStream:
        return OfflineStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


def _what_i_can_do(questions: Sequence[str]) -> str:
    if not questions:
        return NO_FAQ_REPLY
    asks = [q.split("?")[0].strip().rstrip(".").lower() for q in questions[:3]]
    listed = asks[0] if len(asks) == 1 else ", ".join(asks[:-1]) + f", or {asks[-1]}"
    return f"I'm sorry, I don't have an answer to that. I can answer questions like: {listed}."


class OfflineStream(llm.LLMStream):
    def __init__(
        self,
        llm: OfflineLLM,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(llm, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._offline = llm

    async def _run(self) -> None:
        # off the event loop: the caller's audio keeps flowing while a big FAQ is matched
        # (or, on its first turn, indexed)
        reply = await asyncio.to_thread(self._offline.answer, _last_user_text(self.chat_ctx.items))
        request_id = shortuuid("offline_")
        # word by word, like a real LLM stream, so TTS can start on the first sentence
        for piece in re.findall(r"\S+\s*", reply):
            self._event_ch.send_nowait(
                llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", content=piece))
            )


def _last_user_text(items: Sequence[llm.ChatItem]) -> str:
    for item in reversed(items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return item.text_content or ""
    return ""
