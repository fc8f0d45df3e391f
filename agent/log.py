"""The worker's logger, and the text format our command-line tools log in.

Our log lines keep the message static and the variable data (org, provider, reason …) in
``extra=``; a plain ``logging.Formatter`` drops those fields, which leaves a warning that
says what happened but not to whom or why. ``ExtraFormatter`` prints them as
``key=value``. Secrets are masked before any formatter sees a record, by the one
``RedactFilter`` (``providers.log``) that ``setup_logging`` puts on every handler."""

import json
import logging
import re
import sys
from typing import Any

from providers.log import install_redaction
from providers.redaction import MASK, SECRET_LIKE, redact

logger = logging.getLogger("voice_agent")

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def _text(value: Any) -> str:
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        return json.dumps(redact(value), default=str, ensure_ascii=False, separators=(",", ":"))
    text = str(redact(value))
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


def setup_logging(verbose: bool = False, level: str | None = None) -> None:
    """Warnings (``verbose``: our info lines too; ``level``, ``LIVEKIT_LOG_LEVEL``: every
    logger from that level) on stderr, with their fields, redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ExtraFormatter("%(levelname)s %(name)s: %(message)s"))
    root_level = logging.getLevelName(level.upper()) if level else logging.WARNING
    if not isinstance(root_level, int):
        root_level = logging.WARNING
    logging.basicConfig(level=root_level, handlers=[handler], force=True)
    install_redaction()
    if verbose:
        for name in ("voice_agent", "providers", "plugins"):
            logging.getLogger(name).setLevel(min(logging.INFO, root_level))


__all__ = ["MASK", "SECRET_LIKE", "ExtraFormatter", "logger", "setup_logging"]
