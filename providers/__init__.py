"""Per-organization providers: where their configs come from (``providers.config``), what
can be built (``providers.catalogue``) and how a call survives a provider's failure
(``providers.chains``). ``agent/`` imports those packages' faces and the names below, not
the modules behind them."""

from providers.bounded import Lru
from providers.compat import (
    ATTRIBUTE_AGENT_STATE,
    ATTRIBUTE_TRANSCRIPTION_FINAL,
    ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID,
    TOPIC_TRANSCRIPTION,
    ServerEnvOption,
    inline_vad_stream,
    skip_close_transcript_wait,
)
from providers.env_vars import EnvReader, SettingsError, env_reader
from providers.errors import (
    BackendError,
    ConfigError,
    InvalidOrgError,
    MissingSecretError,
    OrgNotFoundError,
    ProviderError,
    ProviderUnavailableError,
)

__all__ = [
    "ATTRIBUTE_AGENT_STATE",
    "ATTRIBUTE_TRANSCRIPTION_FINAL",
    "ATTRIBUTE_TRANSCRIPTION_SEGMENT_ID",
    "TOPIC_TRANSCRIPTION",
    "BackendError",
    "ConfigError",
    "EnvReader",
    "InvalidOrgError",
    "Lru",
    "MissingSecretError",
    "OrgNotFoundError",
    "ProviderError",
    "ServerEnvOption",
    "inline_vad_stream",
    "ProviderUnavailableError",
    "SettingsError",
    "skip_close_transcript_wait",
    "env_reader",
]
