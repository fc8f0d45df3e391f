"""Faults a provider stand-in can inject.

A stand-in reads ``server.fault`` at every decision point (accepting a connection,
answering a request, sending each chunk / audio message / transcript), so a test can
flip it at runtime, including in the middle of a streaming response.
"""

from __future__ import annotations

import enum


class Fault(enum.Enum):
    OK = "ok"
    """Behave like the real provider."""

    REFUSE = "refuse"
    """No listener: the listening socket is closed (open connections are aborted), so new
    connects get ECONNREFUSED. The port stays reserved in ``base_url``; setting any other
    fault re-binds the same port."""

    STATUS_400 = "status_400"
    """Also STATUS_*: the provider rejects the request itself (an invalid model or
    temperature, an over-long prompt), as it would one org's bad config."""
    STATUS_401 = "status_401"
    STATUS_402 = "status_402"
    STATUS_403 = "status_403"
    STATUS_429 = "status_429"
    STATUS_500 = "status_500"
    """Answer the HTTP request / websocket upgrade with this status and a provider-style
    JSON error body."""

    HANG = "hang"
    """Accept the request but never send a byte of output. HTTP: the response status line
    is never sent. Websocket: the upgrade completes (and pings are answered, input is
    drained) but no audio / transcript is ever sent. Set mid-stream, output just stops."""

    HANG_HANDSHAKE = "hang_handshake"
    """Extra (not in the original brief): read the request, including a websocket upgrade
    request, and never answer it (no ``101``). For plain HTTP endpoints identical to HANG."""

    DROP_MID_STREAM = "drop_mid_stream"
    """Send some valid output (``drop_after`` chunks / messages, default 1) then abort the
    TCP connection (RST, no websocket close frame, no final chunk)."""

    ECHO_401 = "echo_401"
    """Extra: a 401 whose provider-style body echoes the key and every request header back,
    as some providers and proxies do (``Incorrect API key provided: sk-…``)."""

    ECHO_500 = "echo_500"
    """Extra: a 500 whose body holds the key and the URL the client called."""

    GARBAGE = "garbage"
    """Extra: a 200 whose body is not the provider's (a proxy's or captive portal's page)."""

    REDIRECT = "redirect"
    """Extra: a 302 to ``server.redirect_to`` (another origin): a client that follows it
    with its key headers hands the key to that origin."""

    @property
    def status(self) -> int | None:
        """The HTTP status of a STATUS_* fault, otherwise None."""
        if self.name.startswith("STATUS_"):
            return int(self.name.removeprefix("STATUS_"))
        return None


STATUS_FAULTS: tuple[Fault, ...] = (
    Fault.STATUS_400,
    Fault.STATUS_401,
    Fault.STATUS_402,
    Fault.STATUS_403,
    Fault.STATUS_429,
    Fault.STATUS_500,
)

LEAK_FAULTS: tuple[Fault, ...] = (Fault.ECHO_401, Fault.ECHO_500, Fault.GARBAGE, Fault.REDIRECT)
"""The faults that test what leaves the worker (the secrets canary, ``--check``), not how a
plugin fails: the per-plugin fault table does not cover them."""
