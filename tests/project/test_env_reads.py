"""Settings are read once: no module reads the process environment after start-up, except
the two places made for it and our plugins' own variables, each said so where it reads."""

from __future__ import annotations

import re

from tests.support import REPO

READERS = {
    "agent/worker/settings.py": "start-up: the one read of the worker's settings",
    "providers/config/env.py": "the environment provider config, from the mapping it is given",
}
READ = re.compile(r"os\.environ|getenv\(")


def test_only_start_up_and_the_env_config_read_the_environment() -> None:
    unexplained = []
    for package in ("agent", "providers", "plugins"):
        for path in sorted((REPO / package).rglob("*.py")):
            name = path.relative_to(REPO).as_posix()
            if name in READERS:
                continue
            lines = path.read_text(encoding="utf-8").splitlines()
            for i, line in enumerate(lines):
                if READ.search(line):
                    # a plugin's own variable says so on the line or in the comment above
                    said = "\n".join(lines[max(0, i - 2) : i + 1])
                    if "own variable" not in said:
                        unexplained.append(f"{name}:{i + 1}: {line.strip()}")
    assert not unexplained, "\n".join(unexplained)
