"""``python -m agent web``: a local web page to talk to a running worker from a browser."""

from agent.tools.web.server import WebCaller, WebOptions, main

__all__ = ["WebCaller", "WebOptions", "main"]
