"""One module per vendor, assembled into the registry: every vendor's specs are there, once,
under names unique per kind; a spec is written by keyword; and the config types know no
vendor (the catalogue types a config, not the config itself)."""

from __future__ import annotations

import dataclasses
import pkgutil
import subprocess
import sys

import pytest

from providers.catalogue import ProviderSpec, names, provider_config, vendors
from providers.catalogue.registry import REGISTRY, VENDORS
from providers.catalogue.spec import given
from providers.catalogue.vendors import cartesia, offline
from providers.types import Options, ProviderConfig, ProviderKind
from tests.support import REPO


def test_every_vendor_module_is_assembled() -> None:
    modules = {m.name for m in pkgutil.iter_modules(vendors.__path__)}
    assert {v.__name__.rsplit(".", 1)[1] for v in VENDORS} == modules


def test_every_vendor_spec_is_in_the_registry_and_nothing_else() -> None:
    specs = [spec for vendor in VENDORS for spec in vendor.SPECS]
    assert all(REGISTRY[(s.name, s.kind)] is s for s in specs)
    assert len(REGISTRY) == len(specs)  # no (name, kind) declared twice


@pytest.mark.parametrize("kind", list(ProviderKind))
def test_names_are_unique_per_kind(kind: ProviderKind) -> None:
    listed = names(kind)
    assert listed and len(listed) == len(set(listed))
    assert all(REGISTRY[(n, kind)].kind is kind for n in listed)


def test_a_spec_is_written_by_keyword() -> None:
    assert all(f.kw_only for f in dataclasses.fields(ProviderSpec))
    with pytest.raises(TypeError):
        ProviderSpec("offline", ProviderKind.LLM, offline.build)  # type: ignore[call-arg]
    spec = ProviderSpec(name="offline", kind=ProviderKind.LLM, build=offline.build)
    assert spec.options is Options and not spec.local


def test_a_plugin_is_given_its_declared_options_that_are_set() -> None:
    options = cartesia.CartesiaOptions.model_validate(
        {"voice": "v1", "firstResultTimeout": 0.5, "pitch": 3}
    )
    # the failover budget is ours, an unknown key is reported at load: neither reaches
    # the plugin; an unset voice would be left to the plugin's own default
    assert given(options) == {
        "model": "sonic-3",
        "voice": "v1",
        "language": "en",
        "sample_rate": 24000,
    }
    assert "voice" not in given(cartesia.CartesiaOptions())


def test_a_config_is_typed_where_it_is_made() -> None:
    made = provider_config(provider="cartesia", kind=ProviderKind.TTS, options={"voice": "v1"})
    assert isinstance(made.settings, cartesia.CartesiaOptions) and made.settings.voice == "v1"
    # the config types know no vendor: made directly, a config keeps the bare options
    bare = ProviderConfig(provider="cartesia", kind=ProviderKind.TTS, options={"voice": "v1"})
    assert type(bare.settings) is Options


def test_the_types_import_nothing_from_the_catalogue() -> None:
    code = (
        "import sys, providers.types\n"
        "loaded = [m for m in sys.modules if m.startswith('providers.catalogue')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
