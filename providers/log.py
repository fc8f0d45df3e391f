"""The providers' logger, and the filter that keeps secrets out of every log line.

Redaction is a ``logging.Filter`` on every handler, not a formatter: under livekit's
``start``/``dev``/``console`` livekit's own formatters print the records (its JSON one
prints every ``extra`` field), and in a job process a ``LogQueueHandler`` formats each
record and ships the text to the worker, whose registry does not know the org keys that
process loaded. A handler filter runs before any of them format, in the process where
the record was made. ``install_redaction`` puts it on every handler there is; it runs
where each mode is sure to pass after its handlers exist (our CLI's ``setup_logging``,
the worker's ``worker_started``, each process's prewarm). The filter rewrites a record in
place, so a handler livekit adds later (a job's LiveKit Cloud log export, its crash-log
buffer) gets the record already redacted: root's handlers are called in the order they
were added, and the first one redacts.
"""

from __future__ import annotations

import logging
from typing import Any

from providers.redaction import MASK, redact, redact_text, secret_name

logger = logging.getLogger("voice_agent.providers")

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_TEXT_FIELDS = ("exc_text", "stack_info", "message")


class RedactFilter(logging.Filter):
    """Rewrites a record in place, before any handler formats it: the message with its
    arguments merged, every ``extra`` field, the exception's traceback and the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            _redact_record(record)
        except Exception:  # a record that cannot be redacted is not printed at all
            record.msg, record.args, record.exc_info, record.exc_text = MASK, None, None, None
        return True


def _redact_record(record: logging.LogRecord) -> None:
    if isinstance(record.msg, dict):  # livekit's JSON formatter prints a dict message as is
        record.msg = redact(record.msg)
    else:
        record.msg, record.args = redact_text(record.getMessage()), None
    if record.exc_info:
        text = record.exc_text or logging.Formatter().formatException(record.exc_info)
        record.exc_text, record.exc_info = text, None
    for name in _TEXT_FIELDS:
        if isinstance(value := getattr(record, name, None), str):
            setattr(record, name, redact_text(value))
    for name, value in list(vars(record).items()):
        if name not in _STANDARD:
            setattr(record, name, MASK if secret_name(name) else redact(value))


_filter = RedactFilter()


def install_redaction(*loggers: logging.Logger) -> None:
    """Put the one ``RedactFilter`` on every handler of the root logger, of every logger
    that has handlers of its own, and of ``loggers`` (idempotent: safe at every start-up
    point)."""
    candidates: list[Any] = [logging.getLogger(), *loggers]
    candidates += [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in candidates:
        for handler in lg.handlers:
            if _filter not in handler.filters:
                handler.addFilter(_filter)


def redaction_installed(handler: logging.Handler) -> bool:
    return _filter in handler.filters


__all__ = ["RedactFilter", "install_redaction", "logger", "redaction_installed"]
