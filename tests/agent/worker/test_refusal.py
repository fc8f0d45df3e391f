"""A refused call tells the room only that it was refused and a short code; the reason
(org, provider, setting) goes to the worker's log, and ``python -m agent call`` says the
code and where to look."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from agent.tools.dispatch import refused as _refused
from agent.worker.call import ATTRIBUTE_CALL_ERROR, refuse_call
from providers.errors import (
    BackendError,
    ConfigError,
    InvalidOrgError,
    OrgNotFoundError,
    ProviderError,
)


class FakeJob:
    """What ``refuse_call`` touches of a ``JobContext``."""

    def __init__(self) -> None:
        self.published: dict[str, str] = {}
        self.shutdown_reason: str | None = None
        self.job = SimpleNamespace(room=SimpleNamespace(name="call-1"))

        async def set_attributes(attrs: dict[str, str]) -> None:
            self.published |= attrs

        self.room = SimpleNamespace(
            local_participant=SimpleNamespace(set_attributes=set_attributes)
        )

    async def connect(self, **_: Any) -> None:
        pass

    def shutdown(self, reason: str = "") -> None:
        self.shutdown_reason = reason


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            OrgNotFoundError("org 'ghost': the backend does not know this organization"),
            "unknown-org",
        ),
        (InvalidOrgError("org 'a\\n': not a valid organization id"), "invalid-org"),
        (BackendError("org 'acme': backend unavailable (ConnectError)"), "backend-unavailable"),
        (ConfigError("org 'acme': no usable stt provider (deepgram needs apiKey)"), "config-error"),
    ],
)
async def test_the_room_hears_the_code_the_log_keeps_the_reason(
    error: ProviderError, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    job = FakeJob()
    with caplog.at_level(logging.ERROR):
        await refuse_call(job, str(error), code=error.code)  # type: ignore[arg-type]
    assert job.published == {ATTRIBUTE_CALL_ERROR: f"call refused ({code})"}
    (record,) = [r for r in caplog.records if r.getMessage() == "call refused"]
    assert (record.__dict__["reason"], record.__dict__["code"]) == (str(error), code)
    assert str(_refused(job.published[ATTRIBUTE_CALL_ERROR])) == (
        f"the agent refused the call ({code}); see the worker's log for why"
    )
