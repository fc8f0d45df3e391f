"""A provider's livekit object from its config: the one place a config meets its vendor's
builder, after its required secrets are checked. Errors name the org, the provider and
what to set, never a value."""

from __future__ import annotations

from typing import Any

from providers.catalogue.registry import get_spec
from providers.catalogue.spec import BuildRequest
from providers.errors import ConfigError, MissingSecretError, ProviderError, who
from providers.types import ConfigSource, OrgProviders, ProviderConfig


def build_provider(config: ProviderConfig, org: OrgProviders) -> Any:
    """One livekit STT/LLM/TTS object for one config. Raises ``ProviderError``."""
    spec = get_spec(config.provider, config.kind)
    if spec is None:
        raise ConfigError(f"{who(org.organization_id)}unknown provider {config.label}")
    options = config.settings  # validated when the config was made
    for secret in spec.secrets:
        if secret.required and not config.secret(secret.name):
            hint = (
                f": set {' or '.join(secret.env)}"
                if org.source is ConfigSource.ENV
                else ": add it to this organization's provider secrets in the backend"
            )
            raise MissingSecretError(
                org.organization_id, config.provider, config.kind.value, secret.name, hint
            )
    secrets = {s.name: v for s in spec.secrets if (v := config.secret(s.name))}
    request = BuildRequest(
        options=options, secrets=secrets, persona=org.agent, org_id=org.organization_id
    )
    try:
        return spec.build(request)
    except ProviderError:
        raise
    except Exception as e:  # a plugin constructor rejected the options
        detail = str(e)
        for value in secrets.values():  # a plugin may echo what it was given
            detail = detail.replace(value, "**********")
        raise ConfigError(
            f"{who(org.organization_id)}provider {config.label} cannot be created: "
            f"{type(e).__name__}: {detail}"
        ) from None
