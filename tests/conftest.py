"""Shared test set-up: every test starts from an environment without any variable the
product reads (a developer's ``.env`` must not leak into a test), and from the settings
start-up builds from it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.worker.settings import Settings
from tests.support.env import is_product_variable, start_up


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots",
        metavar="DIR",
        default=None,
        help="where the browser tests save their pictures of the pages (make screenshots)",
    )


@pytest.fixture(autouse=True)
def _empty_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if is_product_variable(n)]:
        monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def settings(
    _empty_environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Settings]:
    """The installed settings, as ``python -m agent`` builds them; each test spools usage
    records in its own directory, with a fresh sender. A test that sets variables calls
    ``tests.support.env.start_up()`` again."""
    from agent.worker.usage import reset_usage

    monkeypatch.setenv("USAGE_SPOOL_DIR", str(tmp_path / "usage-spool"))
    yield start_up()
    reset_usage()


@pytest.fixture(autouse=True)
def _fresh_provider_health() -> None:
    """Breakers are worker-wide by design; one test's outage must not leak into the next."""
    from providers.chains.health import get_health

    get_health().reset()
