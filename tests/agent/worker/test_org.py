"""Org resolution trusts only server-set metadata (SPEC §3.6)."""

from __future__ import annotations

import json

import pytest

from agent.worker.org import MAX_METADATA_BYTES, resolve_org


def test_dispatch_metadata_wins_over_room_and_default() -> None:
    ref = resolve_org(
        json.dumps({"organizationId": "acme", "providersVersion": 18}),
        json.dumps({"organizationId": "globex"}),
        "fallback-org",
    )
    assert (ref.organization_id, ref.source, ref.providers_version) == ("acme", "dispatch", "18")


def test_room_metadata_then_default_then_none() -> None:
    assert resolve_org("", json.dumps({"organizationId": "globex"}), "d").organization_id == (
        "globex"
    )
    assert resolve_org("", "", "d").source == "default"
    assert resolve_org("", "", None).organization_id is None


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        "[1, 2]",
        json.dumps({"organizationId": 42}),
        json.dumps({"organizationId": "acme\r\nX-Injected: 1"}),
        json.dumps({"organizationId": "x" * 500}),
        json.dumps({"organizationId": "acme", "pad": "y" * MAX_METADATA_BYTES}),
    ],
)
def test_malformed_dispatch_metadata_is_ignored_not_fatal(
    bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    ref = resolve_org(bad, json.dumps({"organizationId": "globex"}), None)
    assert ref.organization_id == "globex" and ref.source == "room"
    assert "ignoring malformed metadata" in caplog.text


@pytest.mark.parametrize("bad", ["acme\n", "acme\r\n"])
def test_a_trailing_newline_is_not_an_org_id(bad: str) -> None:
    from agent.worker.org import check_org_id

    assert resolve_org(json.dumps({"organizationId": bad}), "", None).organization_id is None
    with pytest.raises(ValueError, match="not a valid organization id"):
        check_org_id(bad, "DEFAULT_ORGANIZATION_ID")


@pytest.mark.parametrize("where", ["dispatch", "room"])
def test_deeply_nested_metadata_is_refused_by_name_not_a_crash(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Under the size cap, yet deep enough for ``RecursionError`` in the parser."""
    deep = '{"organizationId": "acme", "x": ' + "[" * 30000 + "]" * 30000 + "}"
    metadata = (deep, "") if where == "dispatch" else ("", deep)
    ref = resolve_org(*metadata, "fallback-org")
    assert ref.source == "default"
    (record,) = [r for r in caplog.records if r.getMessage() == "ignoring malformed metadata"]
    assert record.__dict__["metadata"] == where
    assert record.__dict__["problem"] == "nested deeper than 32 levels"
