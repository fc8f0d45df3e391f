"""Which organization a job belongs to.

Only server-set data is trusted: the job's dispatch metadata (set by the backend through the
LiveKit API), then the room's metadata (set server-side), then ``DEFAULT_ORGANIZATION_ID``.
Participant attributes and metadata are never read — a caller can set those, and trusting
them would let one tenant's caller run on another tenant's keys. This module does not even
accept them as input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from agent.log import logger
from providers.config import ORG_ID_RULE, bounded_json, valid_org_id

MAX_METADATA_BYTES = 64 * 1024


def check_org_id(value: str, what: str) -> str:
    """``value`` if it is a valid organization id, else ``ValueError`` naming ``what`` (the
    flag or variable it came from) and the rule."""
    if not valid_org_id(value):
        raise ValueError(f"{what} {value!r} is not a valid organization id ({ORG_ID_RULE})")
    return value


OrgSource = Literal["dispatch", "room", "default", "none"]


@dataclass(frozen=True)
class OrgRef:
    organization_id: str | None
    source: OrgSource
    providers_version: str | None = None
    """The config version the backend dispatched with; a newer one forces a refetch."""


def resolve_org(job_metadata: str, room_metadata: str, default_org: str | None) -> OrgRef:
    for source, raw in (("dispatch", job_metadata), ("room", room_metadata)):
        parsed = _parse(raw, source)
        if parsed is not None:
            org, version = parsed
            return OrgRef(org, source, version)  # type: ignore[arg-type]
    if default_org:
        return OrgRef(check_org_id(default_org, "DEFAULT_ORGANIZATION_ID"), "default")
    return OrgRef(None, "none")


def _parse(raw: str, source: str) -> tuple[str, str | None] | None:
    """``(organizationId, providersVersion)`` from one metadata string, or None."""
    if not raw or not raw.strip():
        return None
    if len(raw.encode("utf-8", "replace")) > MAX_METADATA_BYTES:
        return _ignore(source, f"larger than {MAX_METADATA_BYTES} bytes")
    try:
        data: Any = bounded_json.loads(raw)
    except bounded_json.JsonError as e:
        return _ignore(source, str(e))
    if not isinstance(data, dict):
        return _ignore(source, "not a JSON object")
    org = data.get("organizationId")
    if org is None:
        return None
    if not valid_org_id(org):
        return _ignore(source, "organizationId is not a valid organization id")
    version = data.get("providersVersion")
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if version is not None and not isinstance(version, str):
        logger.warning("ignoring providersVersion: not a string", extra={"metadata": source})
        version = None
    return org, version


def _ignore(source: str, why: str) -> tuple[str, str | None] | None:
    """Log why this metadata is not trusted for the org, and move on to the next source."""
    logger.warning("ignoring malformed metadata", extra={"metadata": source, "problem": why})
    return None
