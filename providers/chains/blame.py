"""Whose fault a provider failure is: the one rule that picks the breaker it counts against.

Breakers are shared by every call of the worker, so a failure may only close a provider for
the calls it says something about. A failure caused by the request one org's config makes
(an invalid model or temperature answered with 400, an over-long prompt, the org's own
budget shorter than the worker's, a provider timeout it set below the default) says
nothing about the service: it counts against that
org's config alone, so that org's next calls skip it fast and no other org notices. Auth,
quota and rate limits (401/402/403/429) belong to the key, shared by every org that uses it.
Only what says "the service is down for everyone" (refused, reset, 5xx, a timeout at the
worker's budget or the plugin's own) counts against the endpoint.

Every kind (STT, LLM, TTS) and ``--check`` reach the breakers through ``blame``.
"""

from __future__ import annotations

import enum

from livekit.agents import APIStatusError, APITimeoutError

CREDENTIAL_STATUSES = frozenset({401, 402, 403, 429})
"""The key's auth, quota and rate limits."""
SERVICE_STATUSES = frozenset({408})
"""4xx statuses that are the service's own trouble, not the request's (Request Timeout)."""


class Blame(str, enum.Enum):
    ENDPOINT = "endpoint"
    """The service is down for everyone who calls it."""
    CREDENTIAL = "credential"
    """This key: every org that uses it (a shared key, like the worker's env key, is shared)."""
    CONFIG = "config"
    """What this org's config asks for: this org's calls with this config only."""

    def __str__(self) -> str:
        return self.value


class BudgetTimeout(APITimeoutError):
    """A provider gave no first result within the budget its chain gave it. ``own``: the
    budget is the org's own ``firstResultTimeout``, shorter than the worker's for the kind —
    a verdict on the org's choice, not on the provider."""

    def __init__(self, message: str, *, budget: float, own: bool) -> None:
        super().__init__(message, retryable=False)
        self.budget, self.own = budget, own


def blame(error: BaseException, *, own_timeouts: bool = False) -> Blame:
    """Which breaker ``error`` counts against (see the module docstring and the README's
    failover table). ``own_timeouts``: the config set one of its provider's timeouts below
    the default (``Options.shortens_timeouts``), so a timeout is its own doing."""
    if isinstance(error, BudgetTimeout):
        return Blame.CONFIG if error.own or own_timeouts else Blame.ENDPOINT
    if isinstance(error, APITimeoutError) and own_timeouts:
        return Blame.CONFIG
    status = error.status_code if isinstance(error, APIStatusError) else None
    if status in CREDENTIAL_STATUSES:
        return Blame.CREDENTIAL
    if isinstance(status, int) and 400 <= status < 500 and status not in SERVICE_STATUSES:
        return Blame.CONFIG
    return Blame.ENDPOINT
