"""Whether a LiveKit server answers at a URL, and what to tell a user when none does: shared
by the worker's commands (``dev``, ``start``) and the callers (``call``)."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

LIVEKIT_HINT = """\
No LiveKit server is reachable at {url}.
Start one for development and point the worker at it:

    make livekit-server           # once: builds the server from its Go module into .bin/
    make livekit-dev              # runs it: ws://127.0.0.1:7880, devkey / secret
    export LIVEKIT_URL=ws://localhost:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret

No server at hand? `make demo` (python -m agent simulate) runs a whole call without one.
"""


def livekit_reachable(url: str, timeout: float = 2.0) -> bool:
    parsed = urlparse(url)
    if not parsed.hostname:
        return False
    secure = parsed.scheme in ("wss", "https")
    port = parsed.port or (443 if secure else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False
