"""Per-call usage records: built from livekit's accounting, priced, spooled, sent."""

from agent.worker.usage.checkpoint import LiveUsage
from agent.worker.usage.record import CallRecord, UsageLine, usage_lines
from agent.worker.usage.shipper import (
    UsageSender,
    UsageSettings,
    configure_usage,
    get_usage,
    reset_usage,
)

__all__ = [
    "CallRecord",
    "LiveUsage",
    "UsageLine",
    "UsageSender",
    "UsageSettings",
    "configure_usage",
    "get_usage",
    "reset_usage",
    "usage_lines",
]
