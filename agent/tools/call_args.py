"""The command line ``simulate`` and ``call`` share: who calls (``--org``/``--metadata``),
what the caller says (``--input``/``--say``), where the call is written and how it is
paced. One definition, so the two commands take the same words for the same things."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.worker.org import check_org_id
from providers.config import bounded_json

DEFAULT_OUTPUT = Path("out/call.wav")
"""The stereo recording of a call (left: caller, right: agent)."""


def add_call_arguments(parser: argparse.ArgumentParser, *, timeout: float) -> None:
    """The caller's options, ``timeout`` being the default for the whole call."""
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--org", help="organization id (job metadata organizationId)")
    who.add_argument("--metadata", help="raw job metadata JSON, as a dispatch would send")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", type=Path, help="caller audio: a WAV file (one turn)")
    src.add_argument("--say", action="append", help="a caller turn spoken by Piper (repeat)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="stereo WAV to write")
    parser.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    parser.add_argument("--timeout", type=float, default=timeout, help="seconds, whole call")
    parser.add_argument(
        "--no-wait", action="store_true", help="fixed gaps, not waiting for the agent"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="info logs to stderr")


def job_metadata(args: argparse.Namespace) -> str:
    """The job metadata a dispatch would carry, from ``--org`` or ``--metadata``.
    Raises ``ValueError`` with the rule when either is invalid."""
    if args.metadata is not None:
        try:  # a clear error now rather than a default org later
            bounded_json.loads(args.metadata)
        except bounded_json.JsonError as e:
            raise ValueError(f"--metadata: {e}") from None
        return str(args.metadata)
    if args.org:
        return json.dumps({"organizationId": check_org_id(args.org, "--org")})
    return ""


__all__ = ["DEFAULT_OUTPUT", "add_call_arguments", "job_metadata"]
