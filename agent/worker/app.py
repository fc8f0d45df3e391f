"""The worker as livekit's own tools load it: a module whose ``server`` is the
``AgentServer``. ``python -m agent start`` and ``dev`` run it through
``python -m livekit.agents start agent/worker/app.py``; with the LiveKit CLI installed,
``lk agent dev --entrypoint agent/worker/app.py`` runs it with hot reload and
``lk agent console --entrypoint agent/worker/app.py`` talks to it through this machine's
microphone. Importing it builds the server (plugins, settings check, usage sender)."""

from agent.worker.server import build_server
from agent.worker.settings import start_up

server = build_server(start_up())
