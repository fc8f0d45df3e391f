"""JSON from outside the worker (job and room metadata, the backend's answers), parsed only
when it is shallow enough to be handled everywhere after: deeply nested JSON raises
``RecursionError`` in the parser or, past it, in whatever walks the result (validation,
hashing, logging) — an exception no caller expects, which would end the job instead of a
clean refusal."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 32
"""Nesting levels allowed; the backend's format needs about 6, metadata 1."""
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


class JsonError(ValueError):
    """Not JSON, or nested deeper than ``MAX_DEPTH``; the message says which, never the
    input."""


def depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (strings skipped): one pass,
    no recursion, whatever the input."""
    deepest = level = 0
    for c in _NOT_BRACKETS.sub("", _STRINGS.sub('""', text)):
        level += 1 if c in "[{" else -1
        deepest = max(deepest, level)
    return deepest


def loads(raw: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if depth(text) > max_depth:
        raise JsonError(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise JsonError("not JSON") from None
