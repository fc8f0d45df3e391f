"""Per-call usage records: built from livekit's accounting, priced, spooled, sent."""

from .record import CallRecord, UsageLine, usage_lines
from .shipper import UsageSender, UsageSettings, get_usage, reset_usage

__all__ = [
    "CallRecord",
    "UsageLine",
    "UsageSender",
    "UsageSettings",
    "get_usage",
    "reset_usage",
    "usage_lines",
]
