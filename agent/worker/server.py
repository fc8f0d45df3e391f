"""The ``AgentServer``: how this worker registers with LiveKit and runs calls.

Calls run as threads of one worker process by default (``JOB_EXECUTOR=thread``), so the
local models, the provider config cache and provider health are shared by every call the
worker takes. ``JOB_EXECUTOR=process`` isolates each call in its own process instead, at
the cost of loading models and rediscovering provider health per call.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

from livekit.agents import AgentServer, JobExecutorType

from agent.log import logger
from agent.worker.call import entrypoint, session_ended
from agent.worker.prewarm import prewarm
from agent.worker.status import StatusServer, status_port
from agent.worker.turns import TurnSettings
from agent.worker.usage import get_usage
from providers.catalogue import import_plugins
from providers.config import env_float


def _executor_type() -> JobExecutorType:
    raw = os.environ.get("JOB_EXECUTOR", "thread").strip().lower()
    try:
        return JobExecutorType(raw)
    except ValueError:
        raise SystemExit(f"JOB_EXECUTOR={raw!r}: use 'thread' or 'process'") from None


def build_server() -> AgentServer:
    import_plugins()  # on the main thread: livekit refuses to register plugins on a job thread
    env = os.environ
    try:
        TurnSettings.from_env(env)  # a bad setting stops the worker now, not every call
    except ValueError as e:
        raise SystemExit(str(e)) from None
    options: dict[str, Any] = {}
    if env.get("AGENT_HTTP_PORT", "").strip():
        options["port"] = int(env_float(env, "AGENT_HTTP_PORT", 0))
    executor = _executor_type()
    if env.get("PROMETHEUS_PORT", "").strip():
        options["prometheus_port"] = int(env_float(env, "PROMETHEUS_PORT", 0))
        if executor is JobExecutorType.PROCESS and not env.get("PROMETHEUS_MULTIPROC_DIR"):
            # each call is a process: their metrics meet in files livekit's server reads
            options["prometheus_multiproc_dir"] = tempfile.mkdtemp(prefix="voice-agent-prom-")
    if max_calls := int(env_float(env, "MAX_CONCURRENT_CALLS", 0)):
        # Full at exactly max_calls: livekit reports the worker full (and turns jobs away)
        # once load reaches the threshold. Before a job shows up as active, livekit counts
        # each accepted one as threshold / num_idle_processes; with one idle runner per
        # call slot, two dispatches arriving together cannot both take the last slot.
        options["load_threshold"] = (max_calls - 0.5) / max_calls
        options["num_idle_processes"] = max_calls
    server = AgentServer(
        setup_fnc=prewarm,
        job_executor_type=executor,
        initialize_process_timeout=env_float(env, "PREWARM_TIMEOUT", 60.0),
        drain_timeout=int(env_float(env, "DRAIN_TIMEOUT", 1800)),
        **options,
    )
    if max_calls:
        server.load_fnc = lambda s: min(1.0, len(s.active_jobs) / max_calls)
    # every job is accepted (livekit's default on_request): a call whose org cannot be
    # served is refused inside the room, where the caller is told why (call.refuse_call)
    server.rtc_session(
        entrypoint, agent_name=env.get("AGENT_NAME", ""), on_session_end=session_ended
    )
    # usage records spooled by this worker (or before its restart) go out from here
    get_usage().start()
    if (port := status_port(env)) is not None:
        status_server = StatusServer(env.get("STATUS_HOST", "0.0.0.0"), port)
        tasks: set[asyncio.Task[None]] = set()

        async def start_status() -> None:
            try:
                await status_server.start()
            except OSError as e:  # the worker serves calls anyway
                logger.error(
                    "status server could not listen; set STATUS_PORT to a free port or off",
                    extra={"port": port, "error": str(e)},
                )

        def on_started() -> None:
            task = asyncio.ensure_future(start_status())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        server.on("worker_started", on_started)
    return server
