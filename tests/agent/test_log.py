"""The text log format of our command-line tools: a record's ``extra`` fields are printed
as ``key=value`` (they carry the org, provider and reason), secrets never."""

from __future__ import annotations

import logging
import sys

from agent.log import ExtraFormatter

SECRET = "sk-test-LOG-PLANTED-4242"


def formatted(message: str, exc: bool = False, **extra: object) -> str:
    record = logging.LogRecord(
        "voice_agent.providers", logging.WARNING, __file__, 1, message, None, None
    )
    if exc:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            record.exc_info = sys.exc_info()
    record.__dict__.update(extra)
    return ExtraFormatter("%(levelname)s %(name)s: %(message)s").format(record)


def test_extra_fields_follow_the_message_as_key_value() -> None:
    line = formatted(
        "backend unavailable, using the environment config",
        org="acme",
        reason="no answer within 2 s",
        retry_after=5.0,
        chains={"stt": ["whisper"], "llm": ["offline"]},
    )
    assert line == (
        "WARNING voice_agent.providers: backend unavailable, using the environment config "
        'org=acme reason="no answer within 2 s" retry_after=5.0 '
        'chains={"stt":["whisper"],"llm":["offline"]}'
    )


def test_secret_looking_fields_are_masked_at_any_depth() -> None:
    line = formatted(
        "x",
        api_key=SECRET,
        options={"model": "nova-3", "apiKey": SECRET, "nested": {"token": SECRET}},
        headers=[{"Authorization": f"Bearer {SECRET}"}],
    )
    assert SECRET not in line
    assert "api_key=**********" in line and '"model":"nova-3"' in line


def test_a_traceback_comes_after_the_fields() -> None:
    text = formatted("provider crashed", exc=True, provider="vosk")
    first, *rest = text.splitlines()
    assert first.endswith("provider crashed provider=vosk")
    assert rest[0].startswith("Traceback") and rest[-1] == "RuntimeError: boom"
