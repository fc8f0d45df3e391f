"""Where an organization's provider configs come from: the backend's wire format
(``backend``), the environment (``env``), and the loader that asks the backend, caches its
answers and falls back to the environment (``loader``), with its settings (``settings``).
The types they produce are ``providers.types``, re-exported here."""

from providers.config import bounded_json
from providers.config.env import env_persona, env_providers
from providers.config.env import variables as env_variables
from providers.config.loader import ProviderLoader, get_loader
from providers.config.org_id import ORG_ID_RULE, valid_org_id
from providers.config.settings import LoaderSettings
from providers.env_vars import env_bool, env_float
from providers.types import (
    AgentPersona,
    ConfigSource,
    FaqEntry,
    Options,
    OrgProviders,
    ProviderConfig,
    ProviderKind,
    Strategy,
)

__all__ = [
    "ORG_ID_RULE",
    "AgentPersona",
    "ConfigSource",
    "FaqEntry",
    "LoaderSettings",
    "Options",
    "OrgProviders",
    "ProviderConfig",
    "ProviderKind",
    "ProviderLoader",
    "Strategy",
    "bounded_json",
    "env_bool",
    "env_float",
    "env_persona",
    "env_providers",
    "env_variables",
    "get_loader",
    "valid_org_id",
]
