"""``python -m agent usage [--json] [--flush]``: the usage records waiting in this
machine's spool (``USAGE_SPOOL_DIR``) per organization, and sending them now."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from agent.worker.usage.shipper import get_usage, summarize


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent usage", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--flush",
        action="store_true",
        help="send every pending record now; exit 1 if any is still pending",
    )
    args = parser.parse_args(argv)
    usage = get_usage()
    spool = usage.spool
    if spool is None:
        where = "(AICO_BACKEND_URL is not set: records are logged, not spooled)"
        print(json.dumps({"pending": 0, "orgs": {}}) if args.json else f"no usage spool {where}")
        return 0
    sent = asyncio.run(usage.send(everything=True)) if args.flush else 0
    pending = spool.pending()
    counts = spool.counts()
    data = {
        "spool": str(spool.path),
        "backend": usage.settings.url,
        "sent": sent,
        "pending": len(pending),
        "open": counts["open"],
        "quarantined": counts["quarantined"],
        "orgs": summarize(pending),
        "lastErrors": sorted({p.last_error for p in pending if p.last_error}),
    }
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_text(data, flushed=args.flush)
    return 1 if args.flush and pending else 0


def _print_text(data: dict[str, Any], *, flushed: bool) -> None:
    if flushed:
        print(f"sent {data['sent']} record(s) to {data['backend']}")
    print(f"{data['pending']} record(s) pending in {data['spool']}")
    if data["open"]:
        print(f"{data['open']} open record(s): calls running (or recovered once their lease ends)")
    if data["quarantined"]:
        print(
            f"{data['quarantined']} quarantined record(s): unreadable, kept for an operator "
            "(state 'quarantined' in the spool)",
            file=sys.stderr,
        )
    for org, info in sorted(data["orgs"].items()):
        print(f"  {org}: {info['records']} record(s), estimated ${info['estimatedCostUsd']:.4f}")
        for provider, units in sorted(info["units"].items()):
            shown = ", ".join(f"{k} {v:g}" for k, v in units.items())
            print(f"      {provider:<20} {shown}")
    if data["lastErrors"] and data["pending"]:
        print(f"last errors: {', '.join(data['lastErrors'])}", file=sys.stderr)
