"""Speech-to-speech: a call's realtime models (livekit's realtime fallback adapter), whose
last resort is the org's cascaded pipeline, in the same call."""

from providers.chains.realtime.chain import PIPELINE, RealtimeChain, realtime_failure
from providers.chains.realtime.wiring import build_realtime_chain

__all__ = ["PIPELINE", "RealtimeChain", "build_realtime_chain", "realtime_failure"]
