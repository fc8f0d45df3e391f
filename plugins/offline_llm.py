"""The offline responder: the last link of every LLM chain.

It is not a language model. It answers from the organization's FAQ by keyword overlap with
the caller's last message, or says politely that it cannot help right now. It needs no
network and no model, so when every real LLM of a chain is down the caller still hears a
sensible sentence instead of silence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from livekit.agents import APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.utils import shortuuid

DEFAULT_REPLY = "I'm sorry, I can't help with that right now. Please try again a little later."

_WORD = re.compile(r"[a-z0-9']+")
_STOP_WORDS = frozenset(
    "a an and are at be can could do does for from have how i in is it me my of on or "
    "our please the there to we what when where which who why will with would you your "
    "hi hello hey tell about".split()
)


def keywords(text: str) -> set[str]:
    """Lower-cased content words with a crude plural/verb 's' strip, so 'hours' ~ 'hour'."""
    words = (w.strip("'") for w in _WORD.findall(text.lower()))
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words} - _STOP_WORDS


class OfflineLLM(llm.LLM[None]):
    def __init__(
        self,
        *,
        faq: Iterable[tuple[str, str]] = (),
        fallback_reply: str = DEFAULT_REPLY,
    ) -> None:
        super().__init__()
        self._faq = [(keywords(q), a) for q, a in faq]
        self._fallback_reply = fallback_reply

    @property
    def model(self) -> str:
        return "faq-keyword-match"

    @property
    def provider(self) -> str:
        return "offline"

    def answer(self, question: str) -> str:
        """The FAQ answer sharing the most keywords with ``question``, else the fallback."""
        asked = keywords(question)
        best, best_score = self._fallback_reply, 0
        for keys, reply in self._faq:
            score = len(asked & keys)
            if score > best_score:
                best, best_score = reply, score
        return best

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


class OfflineStream(llm.LLMStream):
    _llm: OfflineLLM

    async def _run(self) -> None:
        reply = self._llm.answer(_last_user_text(self._chat_ctx.items))
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
