"""The public faces of ``providers`` and its packages: every name they export exists,
``agent/`` reaches config, chains, errors and the fence only through them, and the order
the faces load in leaves no module half-initialised."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys

import pytest

from tests.support import REPO as ROOT

FACES = ("providers", "providers.config", "providers.chains")
BEHIND_FACES = (
    "providers.config.",
    "providers.chains.",
    "providers.catalogue.",
    "providers.errors",
    "providers.compat",
    "providers.env_vars",
)
"""Modules ``agent/`` imports through a face instead (the catalogue gets its own face)."""


@pytest.mark.parametrize("face", FACES)
def test_every_exported_name_exists(face: str) -> None:
    module = importlib.import_module(face)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{face}.__all__ names what it does not define: {missing}"


def test_agent_imports_providers_through_the_faces() -> None:
    deep = []
    for path in sorted((ROOT / "agent").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            deep += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
                for name in names
                if name.startswith(BEHIND_FACES)
            ]
    faces = "providers, providers.config, providers.catalogue, providers.chains"
    assert not deep, f"import these from the faces ({faces}):\n" + "\n".join(deep)


def test_the_registry_can_be_the_first_module_imported() -> None:
    """It needs only ``providers.types``; the config sources that need the registry sit
    above it, so no import order can meet a half-initialised module."""
    done = subprocess.run(
        [sys.executable, "-c", "import providers.catalogue.registry"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
