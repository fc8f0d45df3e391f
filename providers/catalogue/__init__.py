"""What can be built: one module per vendor (``vendors/``) assembled into the registry, the
list prices, and the checks behind ``python -m agent providers --check``.

This is the catalogue's public face; the rest of the product imports from here. The probe
builds providers through ``providers.chains``, so it is loaded on first use: a config
source can ask the catalogue about a provider without loading the chains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from providers.catalogue.pricing import (
    NO_OVERRIDES,
    TYPICAL_TURN,
    Price,
    PriceOverrides,
    PriceTable,
    Unit,
    cost,
    lookup,
    parse_price,
)
from providers.catalogue.registry import (
    ENV_HINTS,
    OFFLINE_LLM,
    REGISTRY,
    get_spec,
    import_plugins,
    is_known,
    names,
    offline_last,
    provider_config,
)
from providers.catalogue.spec import BuildRequest, HttpCheck, ProviderSpec, SecretSpec

if TYPE_CHECKING:
    from providers.catalogue.probe import ProbeResult, probe_all

__all__ = [
    "ENV_HINTS",
    "NO_OVERRIDES",
    "OFFLINE_LLM",
    "REGISTRY",
    "TYPICAL_TURN",
    "BuildRequest",
    "HttpCheck",
    "Price",
    "PriceOverrides",
    "PriceTable",
    "ProbeResult",
    "ProviderSpec",
    "SecretSpec",
    "Unit",
    "cost",
    "get_spec",
    "import_plugins",
    "is_known",
    "lookup",
    "names",
    "offline_last",
    "parse_price",
    "probe_all",
    "provider_config",
]

_LAZY = {"ProbeResult", "probe_all"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from providers.catalogue import probe

        return getattr(probe, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
