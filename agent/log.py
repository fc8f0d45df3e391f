"""The worker's logger, and the text format our command-line tools log in.

Our log lines keep the message static and the variable data (org, provider, reason …) in
``extra=``; a plain ``logging.Formatter`` drops those fields, which leaves a warning that
says what happened but not to whom or why. ``ExtraFormatter`` prints them as
``key=value``, with any key that looks like a secret masked."""

import json
import logging
import re
import sys
from typing import Any

logger = logging.getLogger("voice_agent")

SECRET_LIKE = re.compile(r"key|secret|token|password|credential|authorization", re.IGNORECASE)
"""Field and option names whose values are never printed."""
MASK = "**********"
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def _masked(value: Any) -> Any:
    """``value`` with every secret-looking key of every nested mapping masked."""
    if isinstance(value, dict):
        return {k: MASK if SECRET_LIKE.search(str(k)) else _masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_masked(v) for v in value]
    return value


def _text(value: Any) -> str:
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        return json.dumps(_masked(value), default=str, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    if not text or re.search(r'[\s="]', text):
        return json.dumps(text, ensure_ascii=False)
    return text


class ExtraFormatter(logging.Formatter):
    """``LEVEL logger: message key=value …``; a traceback, if any, follows the line."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = [(k, v) for k, v in vars(record).items() if k not in _STANDARD]
        return line + "".join(
            f" {k}={MASK if SECRET_LIKE.search(k) else _text(v)}" for k, v in fields
        )


def setup_logging(verbose: bool = False) -> None:
    """Warnings (``verbose``: our info lines too) on stderr, with their fields."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ExtraFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    if verbose:
        for name in ("voice_agent", "providers", "plugins"):
            logging.getLogger(name).setLevel(logging.INFO)
