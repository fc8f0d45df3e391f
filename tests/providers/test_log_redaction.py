"""The log filter on livekit's own handlers: a record from livekit's loggers (its fallback
adapters log a failed provider's message and body at WARNING) is redacted however livekit
formats it — ``start``'s JSON, ``dev``'s colours — and in a job process before its
``LogQueueHandler`` ships the formatted line to the worker."""

from __future__ import annotations

import io
import logging
import pickle
import socket
from collections.abc import Iterator

import pytest
from livekit.agents import APIStatusError
from livekit.agents.cli.log import setup_logging as livekit_setup_logging
from livekit.agents.ipc.log_queue import LogQueueHandler
from livekit.agents.utils.aio import duplex_unix

from providers.log import RedactFilter, install_redaction, redaction_installed
from providers.redaction import register

KEY = "sk-canary-LIVEKIT-LOG-9e8d7c6b"
BODY = {"error": {"message": f"Incorrect API key provided: {KEY}", "headers": {"x": KEY}}}


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """livekit's set-up changes the root logger: put it back after the test. The test
    starts with no redaction on any handler (pytest's own capture handler included: the
    filter rewrites a record in place, so one redacting handler redacts it for all)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    filters = {h: h.filters[:] for h in handlers}
    for h in handlers:
        h.filters = [f for f in h.filters if not isinstance(f, RedactFilter)]
    yield
    for h, kept in filters.items():
        h.filters = kept
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def _log_a_failed_provider() -> None:
    error = APIStatusError(f"bad key {KEY}", status_code=401, body=BODY)
    lk = logging.getLogger("livekit.agents")
    lk.warning("openai failed, switching to next TTS: %s", error, extra={"body": BODY})
    try:
        raise RuntimeError(f"provider said: {BODY}") from error
    except RuntimeError:
        lk.exception("tts error", extra={"url": f"https://user:{KEY}@api.test/v1?api_key={KEY}"})


@pytest.mark.parametrize("devmode", [False, True], ids=["start-json", "dev-colored"])
def test_a_livekit_record_through_livekits_start_handler_is_redacted(
    root_handlers: None, devmode: bool
) -> None:
    register(KEY)
    livekit_setup_logging("INFO", devmode=devmode, console=False)
    handler = logging.getLogger().handlers[-1]
    out = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)

    _log_a_failed_provider()
    assert KEY in out.getvalue()  # livekit's formatters print it all: the filter is needed

    out.truncate(0)
    install_redaction()  # what the worker does on worker_started and in each prewarm
    assert redaction_installed(handler)
    _log_a_failed_provider()
    text = out.getvalue()
    assert "switching to next TTS" in text and "Traceback" in text and "api.test" in text
    assert KEY not in text


def test_a_job_process_redacts_before_its_log_queue_ships_the_line(root_handlers: None) -> None:
    """``JOB_EXECUTOR=process``: livekit's ``proc_main`` puts a ``LogQueueHandler`` on the
    root logger before the prewarm runs; the worker's registry never sees this process's
    org keys, so the line must leave the job process redacted."""
    register(KEY)
    ours, theirs = socket.socketpair()
    handler = LogQueueHandler(duplex_unix._Duplex.open(ours))
    logging.getLogger().addHandler(handler)
    receiving = duplex_unix._Duplex.open(theirs)
    try:
        install_redaction()  # the prewarm's first step
        _log_a_failed_provider()
        records = [pickle.loads(receiving.recv_bytes()) for _ in range(2)]
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        receiving.close()
    shipped = " ".join(f"{r.msg} {r.exc_text} {vars(r)}" for r in records)
    assert "switching to next TTS" in shipped and "Traceback" in shipped
    assert KEY not in shipped


def test_the_worker_redacts_livekits_handlers_once_livekit_started_it(root_handlers: None) -> None:
    """``start``/``dev`` set up livekit's handlers after our module built the server: the
    server puts the filter on them when livekit reports the worker started."""
    from agent.worker.server import build_server
    from agent.worker.settings import Settings

    server = build_server(Settings.from_env({"STATUS_PORT": "off"}))
    livekit_setup_logging("INFO", devmode=False, console=False)
    handler = logging.getLogger().handlers[-1]
    assert not redaction_installed(handler)
    server.emit("worker_started")
    assert redaction_installed(handler)


def test_a_job_process_prewarm_redacts_its_log_queue(root_handlers: None) -> None:
    from types import SimpleNamespace

    from agent.worker.prewarm import prewarm
    from agent.worker.settings import Settings

    ours, theirs = socket.socketpair()
    handler = LogQueueHandler(duplex_unix._Duplex.open(ours))
    logging.getLogger().addHandler(handler)
    try:
        # a deepgram STT and a Piper server: nothing local to load
        env = {"STT_PROVIDER": "deepgram", "TTS_HOST": "127.0.0.1"}
        prewarm(SimpleNamespace(userdata={}), settings=Settings.from_env(env))  # type: ignore[arg-type]
        assert redaction_installed(handler)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        theirs.close()


def test_a_handler_added_later_gets_the_record_redacted(root_handlers: None) -> None:
    """livekit adds handlers per job (its Cloud log export, a crash-log buffer) after the
    prewarm: the first handler's filter has rewritten the record by the time they get it."""
    register(KEY)
    first = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(first)
    install_redaction()
    later = logging.StreamHandler(out := io.StringIO())
    logging.getLogger().addHandler(later)
    try:
        _log_a_failed_provider()
    finally:
        logging.getLogger().removeHandler(later)
    assert not redaction_installed(later)
    assert "switching to next TTS" in out.getvalue() and KEY not in out.getvalue()
