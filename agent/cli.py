"""``python -m agent``: our own subcommands (``providers``, ``simulate``, ``call``, ``web``,
``status``, ``usage``) and the worker's (``start``, ``dev``, ``connect``, ``console``,
``download-files``).

The worker runs through livekit's supported entry point, ``python -m livekit.agents``
(its thin CLI), which loads the ``AgentServer`` from ``agent/worker/app.py``: ``start``
and ``dev`` hand it that module, ``download-files`` runs there as is. ``connect`` joins a
room with the server's public API. ``console`` alone still needs livekit's deprecated
Python CLI: 1.8 has no other console with this machine's audio (``lk agent console`` is
its successor, in the LiveKit CLI)."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import runpy
import sys
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from agent.livekit_server import LIVEKIT_HINT, livekit_reachable

if TYPE_CHECKING:
    from agent.worker.settings import Settings

WORKER_APP = Path(__file__).resolve().parent / "worker" / "app.py"
"""The module whose ``server`` livekit's CLI (and the LiveKit CLI, ``lk``) runs."""

LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL")

USAGE = """\
usage: python -m agent COMMAND [options]      (COMMAND --help for its options)

Our commands:
  providers   the resolved provider chains of an organization; --check probes each one
  simulate    a whole call with no LiveKit server: caller audio from a file or Piper
  call        a caller for a running worker, through a LiveKit server, over WebRTC
  web         a local web page to call a running worker from a browser
  status      which providers a running worker considers healthy, and why not
  usage       usage records waiting in the spool; --flush sends them now

The worker (through livekit's CLI, python -m livekit.agents):
  start       run the worker in production mode (what deployments and the tests run)
  dev         run the worker with development defaults (make dev-local)
  console     talk to the agent with this machine's microphone and speaker
  connect     join one existing room
  download-files  fetch the plugins' model files
"""

CONSOLE_NOTE = (
    "console: livekit's Python console, deprecated in livekit-agents 1.8; its successor is "
    "the LiveKit CLI's `lk agent console --entrypoint agent/worker/app.py`"
)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    """``environ``: what the settings are read from (default: this process's environment,
    read here, once, for every command)."""
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else ""
    if command in ("", "-h", "--help", "help"):
        print(USAGE)
        raise SystemExit(0 if command else 2)
    from agent.worker.settings import install, load

    settings = load(environ)  # exits 2 after one line per bad variable
    install(settings)
    if settings.livekit.dev_secret:
        # livekit-server --dev's well-known secret is short on purpose; say nothing about it
        warnings.filterwarnings("ignore", message="The HMAC key is .* bytes long")
    if command == "providers":
        from agent.tools.providers_cmd import main as providers_main

        raise SystemExit(providers_main(args[1:], settings))
    if command == "simulate":
        from agent.tools.simulate import main as simulate_main

        raise SystemExit(simulate_main(args[1:], settings))
    if command == "call":
        from agent.tools.room_call import main as call_main

        raise SystemExit(call_main(args[1:], settings))
    if command == "web":
        from agent.tools.web import main as web_main

        raise SystemExit(web_main(args[1:], settings))
    if command == "status":
        from agent.worker.status import main as status_main

        raise SystemExit(status_main(args[1:], settings))
    if command == "usage":
        from agent.tools.usage_cmd import main as usage_main

        raise SystemExit(usage_main(args[1:]))
    if command in ("start", "dev"):
        run_livekit(worker_argv(command, args[1:], settings))
    if command == "connect":
        raise SystemExit(connect(args[1:], settings))
    if command == "console":
        console(args[1:])
    if command == "download-files":
        run_livekit(["download-files"])
    print(f"python -m agent: no command {command!r}\n\n{USAGE}", file=sys.stderr)
    raise SystemExit(2)


def end_process(code: str | int | None) -> NoReturn:
    """Exit with ``code`` without Python's interpreter finalization once livekit's native
    runtime has started in this process.

    That runtime's threads call back into Python (events, log batches). A thread that does
    so while the interpreter finalizes is ended by CPython with ``pthread_exit``, whose
    forced unwind through the runtime's Rust frames aborts the process ("panic in a
    function that cannot unwind", exit -6) after the command has done its work. So this
    does what a normal exit does before finalizing (join non-daemon threads, run the
    ``atexit`` callbacks: the runtime's own dispose, logging's flush), then ends."""
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    status = 0 if code is None else code
    ffi = sys.modules.get("livekit.rtc._ffi_client")
    if ffi is None or getattr(ffi.FfiClient, "_instance", None) is None:
        raise SystemExit(status)
    threading._shutdown()  # type: ignore[attr-defined]  # as the interpreter's exit does
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _worker_parser(command: str, settings: Settings) -> argparse.ArgumentParser:
    dev = command == "dev"
    p = argparse.ArgumentParser(
        prog=f"python -m agent {command}",
        description=(
            "Run the worker with development defaults: colored logs, no load limit, no "
            "prewarmed runner, no drain. No reload on file changes: `lk agent dev "
            "--entrypoint agent/worker/app.py` (the LiveKit CLI) reloads."
            if dev
            else "Run the worker in production mode: JSON logs, load limit, graceful drain."
        ),
    )
    p.add_argument("--url", help="the LiveKit server (default: $LIVEKIT_URL)")
    p.add_argument("--api-key", help="its API key (default: $LIVEKIT_API_KEY)")
    p.add_argument("--api-secret", help="its API secret (default: $LIVEKIT_API_SECRET)")
    p.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=(settings.livekit.log_level or ("DEBUG" if dev else "INFO")).upper(),
        help="default: $LIVEKIT_LOG_LEVEL, else %(default)s",
    )
    if dev:
        # livekit 1.8 removed the in-process reload; the flag stays for old command lines
        p.add_argument("--reload", action=argparse.BooleanOptionalAction, help=argparse.SUPPRESS)
    else:
        p.add_argument("--log-format", choices=("json", "colored"), default="json")
        p.add_argument(
            "--drain-timeout",
            type=int,
            help="seconds a SIGTERM waits for calls to end (default: $DRAIN_TIMEOUT, 1800)",
        )
    return p


def worker_argv(command: str, args: list[str], settings: Settings) -> list[str]:
    """``python -m agent start|dev`` as the ``python -m livekit.agents`` command line that
    runs the worker; exits with a hint when no LiveKit server answers. ``--drain-timeout``
    overrides the installed settings' ``DRAIN_TIMEOUT``."""
    from agent.worker.settings import install

    opts = _worker_parser(command, settings).parse_args(args)
    _require_livekit(opts.url, settings)
    argv = ["start", str(WORKER_APP), "--log-level", opts.log_level]
    if command == "dev":
        # what livekit's own `dev` set: livekit's own variable for its development defaults
        # (utils.is_dev_mode), written for livekit to read
        os.environ["LIVEKIT_DEV_MODE"] = "1"
        argv.append("--dev")
    else:
        argv += ["--log-format", opts.log_format]
        if opts.drain_timeout is not None:
            worker = settings.worker.model_copy(update={"drain_timeout": opts.drain_timeout})
            install(settings.model_copy(update={"worker": worker}))
    for flag, value in (
        ("--url", opts.url),
        ("--api-key", opts.api_key),
        ("--api-secret", opts.api_secret),
    ):
        if value:
            argv += [flag, value]
    return argv


def run_livekit(argv: list[str]) -> None:
    """``python -m livekit.agents ARGV``, in this process: livekit's supported CLI."""
    sys.argv = ["python -m livekit.agents", *argv]
    runpy.run_module("livekit.agents", run_name="__main__", alter_sys=True)
    raise SystemExit(0)


def connect(args: list[str], settings: Settings) -> int:
    """Join one room (created if missing) as the agent, without a dispatch: the worker runs
    unregistered and takes that one job."""
    p = argparse.ArgumentParser(
        prog="python -m agent connect", description="Join one room as the agent."
    )
    p.add_argument("--room", required=True, help="the room to join (created if missing)")
    p.add_argument("--participant-identity", help="the agent's identity (default: agent-…)")
    p.add_argument("--url", help="the LiveKit server (default: $LIVEKIT_URL)")
    p.add_argument("--api-key", help="its API key (default: $LIVEKIT_API_KEY)")
    p.add_argument("--api-secret", help="its API secret (default: $LIVEKIT_API_SECRET)")
    p.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default="DEBUG")
    opts = p.parse_args(args)
    url = _require_livekit(opts.url, settings)

    import asyncio
    import logging
    import signal

    from livekit import api
    from livekit.agents import utils

    from agent.log import ExtraFormatter
    from providers.log import install_redaction
    from providers.redaction import register

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ExtraFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=opts.log_level, handlers=[handler], force=True)
    install_redaction()

    from agent.worker.app import server

    secret_setting = settings.livekit.api_secret
    key = opts.api_key or settings.livekit.api_key or ""
    secret = opts.api_secret or (secret_setting.get_secret_value() if secret_setting else "")
    register(secret)  # --api-secret is known to no settings
    server.update_options(ws_url=url, api_key=key, api_secret=secret)
    identity = opts.participant_identity or utils.shortuuid("agent-")

    async def join() -> None:
        async with api.LiveKitAPI(url, key, secret) as lk:
            found = await lk.room.list_rooms(api.ListRoomsRequest(names=[opts.room]))
            room = found.rooms[0] if found.rooms else None
            if room is None:
                room = await lk.room.create_room(api.CreateRoomRequest(name=opts.room))
        await server.simulate_job(
            opts.room, fake_job=False, room_info=room, agent_identity=identity
        )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Future[None]] = set()
        server.once("worker_started", lambda: tasks.add(asyncio.ensure_future(join())))
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: tasks.add(asyncio.ensure_future(server.aclose())))
        await server.run(devmode=True, unregistered=True)

    asyncio.run(run())
    return 0


def console(args: list[str]) -> None:
    if "--help" not in args and (problem := _no_audio_device()):
        print(problem, file=sys.stderr)
        raise SystemExit(1)
    print(CONSOLE_NOTE, file=sys.stderr)
    from livekit.agents import cli

    from agent.worker.app import server

    sys.argv = [sys.argv[0], "console", *args]
    cli.run_app(server)
    raise SystemExit(0)


def _require_livekit(url: str | None, settings: Settings) -> str:
    """The LiveKit server's URL (``url``, else ``$LIVEKIT_URL``); exits with how to start
    one when nothing answers there."""
    url = url or settings.livekit.url or ""
    if not url or not livekit_reachable(url):
        print(LIVEKIT_HINT.format(url=url or "(LIVEKIT_URL is not set)"), file=sys.stderr)
        raise SystemExit(1)
    return url


def _no_audio_device() -> str | None:
    """Why ``console`` cannot use this machine's microphone and speaker, or None."""
    try:
        import sounddevice  # noqa: F401  (loads the PortAudio library)
    except OSError:
        return (
            "console needs the PortAudio library (apt-get install libportaudio2, or "
            "brew install portaudio). Without a microphone: `python -m agent simulate`, "
            "or `python -m agent call` against a running worker."
        )
    except ImportError:
        return "console needs sounddevice: pip install sounddevice"
    return None
