"""``make bench``: every benchmark section in one run; prints a table, writes JSON.

Targets are SPEC §9's; figures are measured on this machine, never asserted in tests.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

SECTIONS = (
    "bench_config",
    "bench_local_tts_stt",  # first to load the models: its load times are cold
    "bench_vosk",
    "bench_failover",
    "bench_voice",
    "bench_turns",
    "bench_rooms",
    "bench_web",
    "bench_density",
    "bench_realtime",
    "bench_density_cloud",
    "bench_soak",
)


def _fmt(value: Any, unit: str) -> str:
    if isinstance(value, float) and unit == "s" and value < 0.001:
        return f"{value * 1e6:.1f} µs"
    if isinstance(value, float) and unit == "s" and value < 1:
        return f"{value * 1000:.1f} ms"
    if isinstance(value, float):
        return f"{value:.3f} {unit}"
    return f"{value} {unit}"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench")
    parser.add_argument("--json", type=Path, default=Path("bench-results/bench.json"))
    parser.add_argument("--only", nargs="*", choices=SECTIONS, help="run only these sections")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": platform.platform(),
        "started": time.time(),
        "sections": {},
    }
    failed = False
    for name in args.only or SECTIONS:
        try:
            module = importlib.import_module(f"tests.bench.{name}")
        except ModuleNotFoundError as e:
            print(f"[{name}] skipped: {e}", file=sys.stderr)
            continue
        print(f"[{name}] running…", file=sys.stderr, flush=True)
        try:
            rows = module.run()
        except Exception:
            traceback.print_exc()
            failed = True
            continue
        results["sections"][name] = rows
        print(f"\n{name}")
        for row in rows:
            target = f"   (target {row['target']})" if row.get("target") else ""
            print(f"  {row['name']:<62} {_fmt(row['value'], row['unit']):>14}{target}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
