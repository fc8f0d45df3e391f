"""The ``AgentServer``: how this worker registers with LiveKit and runs calls.

Calls run as threads of one worker process by default (``JOB_EXECUTOR=thread``), so the
local models, the provider config cache and provider health are shared by every call the
worker takes. ``JOB_EXECUTOR=process`` isolates each call in its own process instead, at
the cost of loading models and rediscovering provider health per call.
"""

from __future__ import annotations

import asyncio
import functools
import math
import tempfile
from typing import Any

from livekit.agents import AgentServer, JobExecutorType

from agent.log import logger, quiet_known_noise
from agent.worker.call import entrypoint, session_ended
from agent.worker.prewarm import prewarm
from agent.worker.settings import Settings
from agent.worker.status import StatusServer
from agent.worker.usage import get_usage
from providers import ServerEnvOption
from providers.catalogue import import_plugins
from providers.log import install_redaction


def build_server(settings: Settings) -> AgentServer:
    """``settings``: validated at start-up (``agent.worker.settings.load``); a job process gets
    them through its prewarm."""
    import_plugins()  # on the main thread: livekit refuses to register plugins on a job thread
    worker = settings.worker
    options: dict[str, Any] = {"host": worker.prometheus_host}  # health + Prometheus
    if worker.http_port is not None:
        options["port"] = worker.http_port
    executor = JobExecutorType(worker.job_executor)
    if worker.prometheus_port is not None:
        options["prometheus_port"] = worker.prometheus_port
        if executor is JobExecutorType.PROCESS and not worker.prometheus_multiproc_dir:
            # each call is a process: their metrics meet in files livekit's server reads
            options["prometheus_multiproc_dir"] = tempfile.mkdtemp(prefix="voice-agent-prom-")
    if max_calls := worker.max_concurrent_calls:
        # Full at exactly max_calls, in production (``dev`` keeps livekit's no limit and no
        # idle runner): livekit reports the worker full (and turns jobs away) once load
        # reaches the threshold. The load is the number of calls, not livekit's default of
        # the machine's CPU, which flips a worker between full and available within one
        # call on a small machine, and dispatches that find it "full" are dropped. Before a
        # job shows up as active, livekit counts each accepted one as threshold /
        # num_idle_processes; with one idle runner per call slot, two dispatches arriving
        # together cannot both take the last slot.
        options["load_threshold"] = ServerEnvOption(
            dev_default=math.inf, prod_default=(max_calls - 0.5) / max_calls
        )
        options["num_idle_processes"] = ServerEnvOption(dev_default=0, prod_default=max_calls)
    server = AgentServer(
        setup_fnc=functools.partial(prewarm, settings=settings),  # pickled to job processes
        job_executor_type=executor,
        initialize_process_timeout=worker.prewarm_timeout,
        drain_timeout=worker.drain_timeout,
        **options,
    )
    # livekit's start/dev set up their log handlers after this module is loaded
    server.on("worker_started", install_redaction)
    quiet_known_noise()
    if max_calls:
        server.load_fnc = lambda s: min(1.0, len(s.active_jobs) / max_calls)
    # every job is accepted (livekit's default on_request): a call whose org cannot be
    # served is refused inside the room, where the caller is told why (call.refuse_call)
    server.rtc_session(entrypoint, agent_name=worker.agent_name, on_session_end=session_ended)
    # usage records spooled by this worker (or before its restart) go out from here
    get_usage().start()
    if (port := worker.status_port) is not None:
        status_server = StatusServer(
            worker.status_host,
            port,
            executor=worker.job_executor,
            token=worker.status_token,
            calls=lambda: len(server.active_jobs),
        )
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
