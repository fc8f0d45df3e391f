"""Start-up as a test does it: the settings from the environment the test set."""

from __future__ import annotations

import os

from agent.settings import Settings, install


def start_up() -> Settings:
    """What ``python -m agent`` does first, from this process's environment as the test set
    it: build the settings and install them."""
    settings = Settings.from_env(os.environ)
    install(settings)
    return settings
