"""The building blocks of a vendor module: what a ``ProviderSpec`` declares, what a builder
receives, and the helpers vendors share: the lazy plugin import with its install hint, the
options a plugin is given (those set), the usual API-key secret, the builder of a livekit
cloud plugin, and the spec of a local provider that can also run on a server.

A vendor module (``providers.catalogue.vendors.<vendor>``) puts these together into its
``SPECS``; the registry collects them. Plugin packages are imported inside the builders, so a
worker never imports a plugin it does not use, and a missing one gives
``provider 'cartesia' needs: pip install livekit-plugins-cartesia``.
"""

from __future__ import annotations

import importlib
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from providers.catalogue.pricing import FREE, PriceTable
from providers.errors import ProviderUnavailableError
from providers.types import AgentPersona, Options, ProviderKind

STT, LLM, TTS = ProviderKind.STT, ProviderKind.LLM, ProviderKind.TTS
LOCAL_EXTRA_HINT = "pip install -e '.[local]'  (or: make install)"


class UrlOptions(Options):
    """A provider reached at ``base_url`` (None: the plugin's default URL)."""

    base_url: str | None = None

    @property
    def endpoint(self) -> str | None:
        return self.base_url


class ServerOptions(Options):
    """A local provider that can also run on a server: with ``host`` set it is reached at
    ``host:port``; without, it runs in this process."""

    host: str | None = None
    port: int

    @property
    def in_process(self) -> bool:
        return not self.host

    @property
    def endpoint(self) -> str | None:
        return None if self.in_process else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SecretSpec:
    name: str
    """The key in the backend's ``secrets`` object."""
    env: tuple[str, ...] = ()
    """Environment variables read in env mode, first set wins."""
    required: bool = True


def api_key(*env: str, required: bool = True) -> tuple[SecretSpec, ...]:
    """The one secret most vendors take: ``apiKey``, read in env mode from ``env``."""
    return (SecretSpec("apiKey", env=env, required=required),)


@dataclass(frozen=True)
class HttpCheck:
    """The cheapest authenticated GET that proves a key works (``providers --check``)."""

    url: Callable[[Any], str]
    """Options → URL, so a ``base_url`` override (a proxy, a test server) is checked too."""
    header: str = "Authorization"
    scheme: str = "Bearer "
    expect: str = "data"
    """The top-level field of the JSON object the provider answers with: a 200 without it
    (a captive portal, a proxy's page, a wrong ``base_url``) proves no key."""


def url(default_base: str, path: str) -> Callable[[Any], str]:
    """An ``HttpCheck`` URL: ``path`` under the options' ``base_url``, else ``default_base``."""
    return lambda o: (getattr(o, "base_url", None) or default_base).rstrip("/") + path


@dataclass(frozen=True)
class BuildRequest:
    """What a builder gets: validated options, resolved secrets and the org's persona."""

    options: Any
    secrets: Mapping[str, str]
    persona: AgentPersona
    org_id: str | None


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    """Everything the worker knows about one provider of one kind. Keyword-only: a spec
    reads as a form, and a field added later cannot shift the others."""

    name: str
    kind: ProviderKind
    build: Callable[[BuildRequest], Any]
    options: type[Options] = Options
    secrets: tuple[SecretSpec, ...] = ()
    env_options: Mapping[str, str] = field(default_factory=dict)
    """Option name → environment variable, read in env mode. Settings whose values mean
    something to one provider only (models, voices, endpoints) get that provider's own
    variable: a chain sends each member only what is meant for it."""
    check: HttpCheck | None = None
    prewarm: Callable[[Any], None] | None = None
    """Loads the provider's local model once per process (called from the worker's setup)."""
    local: bool = False
    """Runs on this machine (``local-only`` keeps it unless its host option points away)."""
    prices: PriceTable = field(default_factory=lambda: FREE)
    """Default list prices per model (``providers.catalogue.pricing``); overridable."""


def plugin(module: str, provider: str, package: str) -> ModuleType:
    """``module``, imported now; missing, a ``ProviderUnavailableError`` saying what to
    install (``package``) for ``provider``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ProviderUnavailableError(f"provider '{provider}' needs: pip install {package}") from e


def given(options: Options) -> dict[str, Any]:
    """The options a vendor's model declares, as its plugin's keyword arguments: those set
    (not None), so the plugin's own defaults apply to the rest. Fields every provider has
    (``Options``'s own, such as the failover budget) and unknown keys are not the plugin's."""
    common = Options.model_fields
    return {
        name: value
        for name in type(options).model_fields
        if name not in common and (value := getattr(options, name)) is not None
    }


def keyed_plugin(
    module: str, factory: str, *, provider: str, **fixed: Any
) -> Callable[[BuildRequest], Any]:
    """The builder of a livekit cloud plugin: ``module``'s ``factory`` (a dotted name such
    as ``LLM.with_azure``) called with the ``apiKey`` secret, ``fixed`` and the options that
    are set. The plugin is imported at the first build; missing, ``provider`` names what to
    install (``livekit.plugins.x`` comes from ``livekit-plugins-x``)."""
    package = module.replace(".", "-")
    make = operator.attrgetter(factory)

    def build(r: BuildRequest) -> Any:
        return make(plugin(module, provider, package))(
            api_key=r.secrets["apiKey"], **fixed, **given(r.options)
        )

    return build


def server_capable(
    *,
    name: str,
    kind: ProviderKind,
    build: Callable[[BuildRequest], Any],
    options: type[ServerOptions],
    env_options: Mapping[str, str],
    load: Callable[[Any], None],
) -> ProviderSpec:
    """The spec of a local provider that can also run on a server (``ServerOptions``): it
    counts as local, and ``load`` (its model, at prewarm) runs only when it runs in this
    process: a server loads its own."""

    def prewarm(o: ServerOptions) -> None:
        if o.in_process:
            load(o)

    return ProviderSpec(
        name=name,
        kind=kind,
        build=build,
        options=options,
        env_options=env_options,
        prewarm=prewarm,
        local=True,
    )
