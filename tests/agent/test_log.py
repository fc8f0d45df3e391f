"""The text log format of our command-line tools: a record's ``extra`` fields are printed
as ``key=value`` (they carry the org, provider and reason), secrets never."""

from __future__ import annotations

import logging
import sys

import pytest

from agent.log import ExtraFormatter, quiet_known_noise

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


# livekit's known-benign warning at every call end is a DEBUG line; other warnings print

NOISE = "livekit_ffi::server:279:livekit_ffi::server - Attempted to drop unknown FFI handle: 23"


@pytest.fixture
def livekit_log(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    quiet_known_noise()
    lk = logging.getLogger("livekit")
    caplog.set_level(logging.INFO, logger="livekit")
    return lk


def test_the_ffi_handle_warning_is_debug_only(
    livekit_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    # as livekit's FFI callback logs it: a format and arguments
    livekit_log.warning(
        "%s:%s:%s - %s",
        "livekit_ffi::server",
        279,
        "livekit_ffi::server",
        "Attempted to drop unknown FFI handle: 23",
    )
    livekit_log.warning("publisher data channel closed unexpectedly")
    assert [r.getMessage() for r in caplog.records] == [
        "publisher data channel closed unexpectedly"
    ]


def test_at_debug_it_still_prints_as_debug(
    livekit_log: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="livekit")
    livekit_log.warning(NOISE)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("DEBUG", NOISE)]
