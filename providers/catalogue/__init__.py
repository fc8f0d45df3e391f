"""What can be built: one module per vendor (``vendors/``) assembled into the registry, the
list prices, and the checks behind ``python -m agent providers --check``.

This is the catalogue's public face; the rest of the product imports from here. The probe
builds providers through ``providers.chains``, so it is loaded on first use: a config
source can ask the catalogue about a provider without loading the chains.
"""

from __future__ import annotations

from providers.catalogue.build import build_provider
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
    "ProviderSpec",
    "SecretSpec",
    "Unit",
    "build_provider",
    "cost",
    "get_spec",
    "import_plugins",
    "is_known",
    "lookup",
    "names",
    "offline_last",
    "parse_price",
    "provider_config",
]
