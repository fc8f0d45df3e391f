"""The ``AgentServer``: how this worker registers with LiveKit and runs calls.

Calls run as threads of one worker process by default (``JOB_EXECUTOR=thread``), so the
local models, the provider config cache and provider health are shared by every call the
worker takes. ``JOB_EXECUTOR=process`` isolates each call in its own process instead, at
the cost of loading models and rediscovering provider health per call.
"""

from __future__ import annotations

import os

from livekit.agents import AgentServer, JobExecutorType

from providers.registry import import_plugins
from providers.settings import env_float

from .call import entrypoint
from .prewarm import prewarm


def _executor_type() -> JobExecutorType:
    raw = os.environ.get("JOB_EXECUTOR", "thread").strip().lower()
    try:
        return JobExecutorType(raw)
    except ValueError:
        raise SystemExit(f"JOB_EXECUTOR={raw!r}: use 'thread' or 'process'") from None


def build_server() -> AgentServer:
    import_plugins()  # on the main thread: livekit refuses to register plugins on a job thread
    server = AgentServer(
        setup_fnc=prewarm,
        job_executor_type=_executor_type(),
        initialize_process_timeout=env_float(os.environ, "PREWARM_TIMEOUT", 60.0),
    )
    if max_calls := env_float(os.environ, "MAX_CONCURRENT_CALLS", 0):
        # at its call limit the worker reports full load, so LiveKit dispatches elsewhere
        # (livekit's default load is CPU-based, with a 0.7 threshold in production)
        server.load_fnc = lambda s: len(s.active_jobs) / max_calls
    server.rtc_session(entrypoint, agent_name=os.environ.get("AGENT_NAME", ""))
    return server
