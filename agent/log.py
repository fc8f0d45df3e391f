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


KNOWN_NOISE = ("Attempted to drop unknown FFI handle",)
"""livekit warnings that report nothing wrong. livekit's ``Room`` makes a track object
for each subscribed caller track; when the room closes, its native side frees the track,
and the Python object's later garbage collection asks to free it again: one WARNING per
call end, from livekit's own objects, never ours (traced to ``RemoteAudioTrack``)."""


class KnownNoiseFilter(logging.Filter):
    """Demotes ``KNOWN_NOISE`` to DEBUG: printed only when livekit's logger is at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not any(
            n in str(record.msg) or n in str(record.args) for n in KNOWN_NOISE
        ):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger("livekit").isEnabledFor(logging.DEBUG)


_noise_filter = KnownNoiseFilter()


def quiet_known_noise() -> None:
    """On livekit's logger, which its native runtime's log lines come through (idempotent)."""
    livekit_logger = logging.getLogger("livekit")
    if _noise_filter not in livekit_logger.filters:
        livekit_logger.addFilter(_noise_filter)


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
    quiet_known_noise()
    if verbose:
        for name in ("voice_agent", "providers", "plugins"):
            logging.getLogger(name).setLevel(min(logging.INFO, root_level))


__all__ = [
    "MASK",
    "SECRET_LIKE",
    "ExtraFormatter",
    "KnownNoiseFilter",
    "logger",
    "quiet_known_noise",
    "setup_logging",
]
