"""``python -m agent``: our own subcommands (``providers``, ``simulate``, ``call``,
``status``, ``usage``), everything else handed to livekit's CLI (``dev``, ``start``,
``console``, ``connect``, ``download-files``)."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping

from agent.livekit_server import LIVEKIT_HINT, livekit_reachable

_NEEDS_SERVER = {"dev", "start", "connect"}

USAGE = """\
usage: python -m agent COMMAND [options]      (COMMAND --help for its options)

Our commands:
  providers   the resolved provider chains of an organization; --check probes each one
  simulate    a whole call with no LiveKit server: caller audio from a file or Piper
  call        a caller for a running worker, through a LiveKit server, over WebRTC
  status      which providers a running worker considers healthy, and why not
  usage       usage records waiting in the spool; --flush sends them now

livekit's commands (its CLI):
  start       run the worker in production mode (what deployments and the tests run)
  dev         run the worker with development defaults (make dev-local)
  console     talk to the agent with this machine's microphone and speaker
  connect     join one existing room
  download-files  fetch the plugins' model files
"""


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> None:
    """``environ``: what the settings are read from (default: this process's environment,
    read here, once, for every command)."""
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else ""
    if command in ("", "-h", "--help", "help"):
        print(USAGE)
        raise SystemExit(0 if command else 2)
    from agent.settings import install, load

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
    if command == "status":
        from agent.worker.status import main as status_main

        raise SystemExit(status_main(args[1:], settings))
    if command == "usage":
        from agent.tools.usage_cmd import main as usage_main

        raise SystemExit(usage_main(args[1:]))

    if command == "console" and "--help" not in args and (problem := _no_audio_device()):
        print(problem, file=sys.stderr)
        raise SystemExit(1)
    if command in _NEEDS_SERVER and "--help" not in args:
        url = _flag(args, "--url") or settings.livekit.url or ""
        if not url or not livekit_reachable(url):
            print(LIVEKIT_HINT.format(url=url or "(LIVEKIT_URL is not set)"), file=sys.stderr)
            raise SystemExit(1)

    from livekit.agents import cli

    from agent.worker.server import build_server

    sys.argv = [sys.argv[0], *args]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        cli.run_app(build_server(settings))


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


def _flag(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None
