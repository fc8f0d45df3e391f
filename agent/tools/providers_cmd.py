"""``python -m agent providers [--org ID] [--json] [--check]``: what chains a call of this
org would get, where the config came from, and (``--check``) whether each provider works.

Everything printed goes through the one redaction (``providers.redaction``): options with
credential names masked at any depth, URLs without userinfo or query string, no known
secret in a check's detail or an error."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from agent.log import setup_logging
from agent.worker.org import check_org_id
from agent.worker.settings import Settings
from providers import ProviderError
from providers.catalogue import OFFLINE_LLM, offline_last
from providers.chains import (
    Dropped,
    HealthKeys,
    HealthRegistry,
    ProbeResult,
    Routing,
    apply_strategy,
    probe_all,
)
from providers.config import OrgProviders, ProviderConfig, ProviderKind, ProviderLoader, Strategy
from providers.redaction import redact, redact_text, safe_urls
from providers.types import PIPELINE_KINDS


def shown_options(options: Any) -> dict[str, Any]:
    """Options as printed: a key-looking option someone put in ``config`` is hidden too, at
    any depth, and an endpoint shows no userinfo or query string."""
    masked: dict[str, Any] = redact(dict(options))
    return {k: safe_urls(v) if isinstance(v, str) else v for k, v in masked.items()}


def _entry(
    config: ProviderConfig, result: ProbeResult | None, health: HealthRegistry, org_id: str | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "provider": config.provider,
        "priority": config.priority,
        "options": shown_options(config.options),
    }
    if result is not None:
        entry["check"] = {"ok": result.ok, "detail": redact_text(result.detail)}
        # a config that cannot be built (missing key, bad option) is no verdict on the
        # provider's health: no breaker is involved
        config_problem = not result.ok and result.error is None
        keys = HealthKeys.of(config, org_id)
        entry["breaker"] = None if config_problem else health.state_of(keys).value
    return entry


def _with_offline(org: OrgProviders) -> OrgProviders:
    """The LLM chain as the factory builds it (``registry.offline_last``)."""
    return org.model_copy(update={"llm": offline_last(org.llm)})


def report(
    org: OrgProviders,
    results: list[ProbeResult] | None,
    health: HealthRegistry,
    routing: Routing | None = None,
    dropped: list[Dropped] | None = None,
) -> dict[str, Any]:
    by_config = {id(r.config): r for r in results or []}
    routing = routing or Routing(Strategy.PRIORITY)
    out: dict[str, Any] = {
        "organizationId": org.organization_id,
        "source": org.source.value,
        "version": org.version,
        "strategy": routing.strategy.value,
        "overBudget": routing.over_budget,
    }
    for kind in ProviderKind:
        out[kind.value] = [
            _entry(c, by_config.get(id(c)), health, org.organization_id) for c in org.chain(kind)
        ]
    out["dropped"] = [
        {
            "kind": d.config.kind.value,
            "provider": d.config.provider,
            "reason": redact_text(d.reason),
        }
        for d in dropped or []
    ]
    return out


def down_kinds(org: OrgProviders, results: list[ProbeResult]) -> list[str]:
    """Kinds with no working provider. When real LLMs are configured and all fail, the LLM
    kind is down even though the offline responder works: it keeps a caller from silence,
    but it is not a language model."""
    ok = {id(r.config) for r in results if r.ok}
    down = []
    for kind in ProviderKind:
        chain = org.chain(kind)
        if not chain and kind not in PIPELINE_KINDS:
            continue  # no realtime model: the pipeline serves, nothing is down
        real = [c for c in chain if c.provider != OFFLINE_LLM] or list(chain)
        if not any(id(c) in ok for c in real):
            down.append(kind.value)
    return down


def _print_text(data: dict[str, Any]) -> None:
    print(f"organization: {data['organizationId'] or '(none: environment config)'}")
    print(f"source:       {data['source']}   version: {data['version'] or '-'}")
    budget = "  (monthly budget spent: routing by cost)" if data["overBudget"] else ""
    print(f"strategy:     {data['strategy']}{budget}")
    for kind in ProviderKind:
        if kind not in PIPELINE_KINDS and not data[kind.value]:
            continue
        print(f"{kind.value.upper()}:")
        for i, e in enumerate(data[kind.value], 1):
            opts = ", ".join(f"{k}={v}" for k, v in e["options"].items()) or "defaults"
            line = f"  {i}. {e['provider']:<18} priority {e['priority']:<5} {opts}"
            if "check" in e:
                line += f"\n     {_check_line(e)}"
            print(line)
    for d in data["dropped"]:
        print(f"left out: {d['kind']} {d['provider']}: {d['reason']}")


def _check_line(entry: dict[str, Any]) -> str:
    """What the probe found, first; the breaker only where a failure involves it."""
    check, breaker = entry["check"], entry["breaker"]
    if check["ok"]:
        return f"[ok]   {check['detail']}"
    if breaker is None:
        return f"[FAIL] cannot be built: {check['detail']}"
    return (
        f"[FAIL] {check['detail']}; breaker {breaker}: in a worker, calls would skip it "
        "until one tries it again after PROVIDER_COOLDOWN"
    )


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    loader = ProviderLoader(settings.loader, environ=settings.provider_env)
    health = HealthRegistry()  # this process's breakers: what the probes just found
    try:
        loaded = await loader.load(args.org, providers_version=None)
        routing = Routing.of(loaded, settings.strategy)
        arranged, dropped = apply_strategy(loaded, routing.strategy, settings.pricing)
        org = _with_offline(arranged)
        results = await probe_all(org, health) if args.check else None
    except ProviderError as e:
        print(f"error: {redact_text(str(e))}", file=sys.stderr)
        return 2
    finally:
        await loader.aclose()
    data = report(org, results, health, routing, dropped)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_text(data)
    if results is not None and (down := down_kinds(org, results)):
        print(f"no working provider for: {', '.join(down)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent providers", description=__doc__)
    parser.add_argument(
        "--org",
        default=settings.default_organization_id,
        help="organization id (default: DEFAULT_ORGANIZATION_ID; none = environment config)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true", help="probe every provider")
    args = parser.parse_args(argv)
    if args.org:
        try:
            source = (
                "--org" if any(a.startswith("--org") for a in argv) else "DEFAULT_ORGANIZATION_ID"
            )
            check_org_id(args.org, source)
        except ValueError as e:
            print(f"providers: {e}", file=sys.stderr)
            return 2
    setup_logging()
    return asyncio.run(_run(args, settings))
