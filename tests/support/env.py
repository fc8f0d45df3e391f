"""The environment a test starts from: none of the variables the product reads, so a
developer's ``.env`` (or shell) cannot change what a test sees."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping

from agent.worker.settings import Settings, install
from providers.config import env
from tests.support import REPO

KEPT = ("LIVEKIT_SERVER_BIN",)
"""Read by the test rig only (which LiveKit server the real-room tests start)."""


@functools.cache
def product_variables() -> frozenset[str]:
    """Every variable the product reads — the worker's settings, the environment provider
    config (chains, options, keys, persona, retired names) — and every one ``.env.example``
    documents."""
    names = set(Settings.variables()) | env.variables()
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    names |= set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.M))
    return frozenset(names)


def is_product_variable(name: str) -> bool:
    """Also livekit's own ``LIVEKIT_*`` (its CLI and inference read more than ours)."""
    if name in KEPT:
        return False
    return name in product_variables() or name.startswith("LIVEKIT_")


def clean_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) without the product's variables: the base of
    every subprocess a test starts (interpreter, locale, certificates and paths stay)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if not is_product_variable(k)}


def start_up() -> Settings:
    """What ``python -m agent`` does first, from this process's environment as the test set
    it: build the settings and install them."""
    settings = Settings.from_env(os.environ)
    install(settings)
    return settings
