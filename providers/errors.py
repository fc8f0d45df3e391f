"""Errors a job can meet while resolving its providers.

Every message names the organization, the provider and the field involved, and says how to
fix it. None ever contains a secret value: callers pass names, never values.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base class: anything that stops a provider (or a whole config) from being used.

    ``code``: what a refused call tells the room (``agent.worker.call``) — short, fixed,
    the same for every org; the message, with the org and the detail, stays in the log."""

    code = "refused"


class ConfigError(ProviderError):
    """A provider config is invalid (bad option, missing secret, empty chain)."""

    code = "config-error"


class MissingSecretError(ConfigError):
    def __init__(self, org: str | None, provider: str, kind: str, secret: str, hint: str) -> None:
        self.provider, self.kind, self.secret = provider, kind, secret
        super().__init__(f"{who(org)}provider '{provider}' ({kind}) needs secret '{secret}'{hint}")


class ProviderUnavailableError(ProviderError):
    """The provider cannot run on this machine (plugin not installed, local model missing)."""

    code = "provider-unavailable"


class BackendError(ProviderError):
    """The backend could not give a usable answer (down, slow, refused us, sent garbage)."""

    code = "backend-unavailable"


class OrgNotFoundError(BackendError):
    """The backend says the organization does not exist (HTTP 404): never fall back for it."""

    code = "unknown-org"


class InvalidOrgError(OrgNotFoundError):
    """The organization id is not one (``providers.config.org_id``), or no backend request
    can be built for it: an unknown org, refused in every mode, not a backend outage."""

    code = "invalid-org"


def who(org: str | None) -> str:
    """The ``org 'acme': `` prefix every error message starts with (empty without an org)."""
    return f"org '{org}': " if org else ""
