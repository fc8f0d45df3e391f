"""How a call survives a provider's failure: each kind's chain (``stt``, ``llm``, ``tts``:
guard, fallback adapter, wiring), the breakers every call of the worker shares
(``health``), the budgets a chain gives its providers (``budgets``), the switches a call
records (``events``), which providers a call's chains hold (``routing``), and the realtime
models an org may answer with before its pipeline (``realtime``)."""

from providers.catalogue import build_provider
from providers.chains.blame import Blame, BudgetTimeout, blame
from providers.chains.budgets import FailoverSettings
from providers.chains.build import Chains, build_chains
from providers.chains.events import Failover, FailoverListener, FailoverLog
from providers.chains.health import (
    BreakerInfo,
    BreakerState,
    HealthKeys,
    HealthListener,
    HealthRegistry,
    configure_health,
    describe_error,
    get_health,
)
from providers.chains.probe import ProbeResult, probe_all
from providers.chains.realtime import RealtimeChain
from providers.chains.routing import (
    Dropped,
    Routing,
    apply_strategy,
    env_strategy,
    is_local,
    price_of,
)
from providers.chains.stt.early_decode import DEFAULT_EARLY_DECODE, DEFAULT_JOIN_PAUSES

__all__ = [
    "DEFAULT_EARLY_DECODE",
    "DEFAULT_JOIN_PAUSES",
    "Blame",
    "BreakerInfo",
    "BreakerState",
    "BudgetTimeout",
    "Chains",
    "Dropped",
    "Failover",
    "FailoverListener",
    "FailoverLog",
    "FailoverSettings",
    "HealthKeys",
    "HealthListener",
    "HealthRegistry",
    "ProbeResult",
    "RealtimeChain",
    "Routing",
    "apply_strategy",
    "blame",
    "build_chains",
    "build_provider",
    "configure_health",
    "describe_error",
    "env_strategy",
    "get_health",
    "is_local",
    "price_of",
    "probe_all",
]
