"""``python -m agent web``: one local page to call a running worker from a browser.

The page (``static/``) joins with the LiveKit JavaScript client, shipped in this package
(``static/livekit-client.umd.js``, pinned in the Makefile), so it needs no internet and no
npm at run time. This server mints the caller's token and dispatches the agent by
``AGENT_NAME`` with the org chosen in the page, through the server API as ``call`` does
(``agent.tools.dispatch``) — a development stand-in for the backend, which dispatches in
production.

It listens on loopback only: whoever reaches it can dispatch calls with the server's API
secret. Requests must come from a loopback ``Host`` (no DNS rebinding) and post JSON (a
foreign web page cannot, without a preflight this server never answers)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web
from livekit import api

from agent.livekit_server import livekit_reachable
from agent.log import logger, setup_logging
from agent.tools.dispatch import CallFailed, caller_token, dispatch, why_no_agent
from agent.tools.room_call import CallOptions
from agent.worker.call import ATTRIBUTE_CALL_ERROR
from agent.worker.org import check_org_id
from agent.worker.settings import Settings
from agent.worker.turn_feed import TOPIC_TURN
from providers import (
    ATTRIBUTE_AGENT_STATE,
    ATTRIBUTE_TRANSCRIPTION_FINAL,
    ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID,
    TOPIC_TRANSCRIPTION,
)

HOST = "127.0.0.1"
DEFAULT_PORT = 8090
JOIN_TIMEOUT = 20.0
"""Seconds the page waits for the agent to join before it asks why not."""
STATIC = resources.files("agent.tools.web") / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class WebOptions:
    """The LiveKit server and agent the page calls (``CallOptions``' fields), and the org the
    page proposes."""

    call: CallOptions
    default_org: str = ""
    join_timeout: float = JOIN_TIMEOUT


def _error(status: int, state: str, message: str) -> web.Response:
    """``state``: which of the page's states it is (``no-server``, ``bad-request``,
    ``dispatch-failed``)."""
    return web.json_response({"state": state, "error": message}, status=status)


@web.middleware
async def _local_only(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.url.host not in LOOPBACK_HOSTS:
        return _error(403, "forbidden", "this page answers on 127.0.0.1 / localhost only")
    response: web.StreamResponse = await handler(request)
    return response


class WebCaller:
    """The page's server: its files and three small routes."""

    def __init__(self, options: WebOptions) -> None:
        self.options = options
        self.app = web.Application(middlewares=[_local_only])
        self.app.router.add_get("/", self._index)
        self.app.router.add_get("/static/{name}", self._static)
        self.app.router.add_get("/api/config", self._config)
        self.app.router.add_post("/api/calls", self._start_call)
        self.app.router.add_post("/api/calls/{room}/why", self._why)
        self.app.router.add_post("/api/calls/{room}/end", self._end)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    async def start(self, port: int = DEFAULT_PORT) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _index(self, _request: web.Request) -> web.Response:
        return self._file("index.html")

    async def _static(self, request: web.Request) -> web.Response:
        return self._file(request.match_info["name"])

    def _file(self, name: str) -> web.Response:
        types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
        kind = next((t for ext, t in types.items() if name.endswith(ext)), None)
        item = STATIC / name
        if kind is None or "/" in name or name.startswith(".") or not item.is_file():
            raise web.HTTPNotFound()
        return web.Response(
            body=item.read_bytes(),
            content_type=kind,
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    async def _config(self, _request: web.Request) -> web.Response:
        call = self.options.call
        return web.json_response(
            {
                "agentName": call.agent_name,
                "livekitUrl": call.url,
                "defaultOrg": self.options.default_org,
                "joinTimeout": self.options.join_timeout,
                # the wire names the page listens for, from the one place that knows them
                "protocol": {
                    "transcriptionTopic": TOPIC_TRANSCRIPTION,
                    "segmentIdAttribute": ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID,
                    "finalAttribute": ATTRIBUTE_TRANSCRIPTION_FINAL,
                    "agentStateAttribute": ATTRIBUTE_AGENT_STATE,
                    "callErrorAttribute": ATTRIBUTE_CALL_ERROR,
                    "turnTopic": TOPIC_TURN,
                },
            }
        )

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="post JSON")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="post a JSON object")
        return body

    async def _start_call(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        org = body.get("org") or ""
        try:
            org = check_org_id(org, "organization") if org else ""
        except ValueError as e:
            return _error(400, "bad-request", str(e))
        call = self.options.call
        if not await asyncio.to_thread(livekit_reachable, call.url):
            return _error(
                503,
                "no-server",
                f"no LiveKit server at {call.url}: start one (`make livekit-server` once, then "
                "`make livekit-dev`) or set LIVEKIT_URL",
            )
        room = f"web-{uuid.uuid4().hex[:10]}"
        identity = f"caller-{uuid.uuid4().hex[:6]}"
        metadata = json.dumps({"organizationId": org}) if org else ""
        try:
            async with self._api() as lk:
                await dispatch(
                    lk,
                    url=call.url,
                    api_key=call.api_key,
                    agent_name=call.agent_name,
                    room=room,
                    metadata=metadata,
                )
        except CallFailed as e:
            return _error(502, "dispatch-failed", str(e))
        logger.info("web call dispatched", extra={"room": room, "org": org or None})
        token = caller_token(call.api_key, call.api_secret, room=room, identity=identity)
        return web.json_response(
            {"url": call.url, "token": token, "room": room, "identity": identity}
        )

    async def _why(self, request: web.Request) -> web.Response:
        await self._body(request)
        call = self.options.call
        async with self._api() as lk:
            message = await why_no_agent(
                lk,
                url=call.url,
                agent_name=call.agent_name,
                room=request.match_info["room"],
                waited=self.options.join_timeout,
            )
        return web.json_response({"state": "no-agent", "error": message})

    async def _end(self, request: web.Request) -> web.Response:
        await self._body(request)
        try:
            async with self._api() as lk:
                await lk.room.delete_room(api.DeleteRoomRequest(room=request.match_info["room"]))
        except api.TwirpError:
            pass  # already gone
        return web.json_response({"ended": True})

    def _api(self) -> api.LiveKitAPI:
        call = self.options.call
        return api.LiveKitAPI(call.url, call.api_key, call.api_secret)


# ---------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m agent web",
        description="A local page to call a running worker from a browser (LIVEKIT_URL, "
        "LIVEKIT_API_KEY, LIVEKIT_API_SECRET, AGENT_NAME from the environment). "
        f"Listens on {HOST} only.",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="default: %(default)s")
    p.add_argument("--agent-name", help="agent to dispatch (default: $AGENT_NAME)")
    p.add_argument("--url", help="LiveKit server (default: $LIVEKIT_URL)")
    p.add_argument("--org", help="the org the page proposes (default: $DEFAULT_ORGANIZATION_ID)")
    p.add_argument("-v", "--verbose", action="store_true", help="info logs to stderr")
    return p


async def _serve(web_caller: WebCaller, port: int) -> None:
    await web_caller.start(port)
    call = web_caller.options.call
    print(
        f"web caller: {web_caller.url}  (LiveKit {call.url}, agent "
        f"{call.agent_name or '(automatic dispatch)'}); Ctrl-C stops it",
        file=sys.stderr,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await web_caller.stop()


def main(argv: list[str], settings: Settings) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    org = args.org if args.org is not None else settings.default_organization_id or ""
    try:
        org = check_org_id(org, "--org") if org else ""
    except ValueError as e:
        print(f"web: {e}", file=sys.stderr)
        return 2
    options = WebOptions(
        CallOptions.of(settings, url=args.url, agent_name=args.agent_name), default_org=org
    )
    try:
        asyncio.run(_serve(WebCaller(options), args.port))
    except KeyboardInterrupt:
        return 0
    except OSError as e:
        where = f"{HOST}:{args.port}"
        print(f"web: cannot listen on {where} ({e.strerror}): use --port", file=sys.stderr)
        return 1
    return 0
