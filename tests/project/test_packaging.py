"""The package builds as pip builds it: setuptools' ``build_py`` on a scratch copy of the
project ships the demo FAQ and the ``py.typed`` markers, with no packaging warning."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import REPO


def test_build_ships_the_data_files_without_a_packaging_warning(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("agent", "providers", "plugins"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    build = tmp_path / "build"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(build),
        ],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "absent from the `packages`" not in proc.stderr
    assert "Installing 'agent.data' as data is deprecated" not in proc.stderr
    assert "SetuptoolsDeprecationWarning" not in proc.stderr, proc.stderr
    for shipped in (
        "agent/data/demo_faq.json",
        "agent/data/grafana-dashboard.json",
        "agent/py.typed",
        "providers/py.typed",
    ):
        assert (build / shipped).is_file(), shipped
