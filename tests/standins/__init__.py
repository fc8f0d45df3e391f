"""Stand-in servers for tests, all on 127.0.0.1: the platform backend (``backend``), Piper's
and vosk-server's own protocols (``piper_server``, ``vosk_server``), and the cloud
provider APIs below.

Each stand-in is an aiohttp server on 127.0.0.1 (ephemeral port) that speaks one
provider's wire format closely enough for the real livekit plugin classes to talk to it,
with a runtime-mutable ``fault`` (see :class:`Fault`)::

    async with DeepgramStandin(transcript="hi there") as srv:
        stt = deepgram.STT(api_key="k", base_url=srv.base_url, http_session=session)
        ...
        srv.fault = Fault.STATUS_429
        assert srv.requests[-1].api_key == "k"
"""

from ._server import RecordedRequest, StandinServer, encode_audio, text_duration, tone_pcm
from .cartesia import CartesiaStandin
from .deepgram import DeepgramStandin
from .elevenlabs import ElevenLabsStandin
from .faults import LEAK_FAULTS, STATUS_FAULTS, Fault
from .openai import OpenAIStandin

__all__ = [
    "LEAK_FAULTS",
    "STATUS_FAULTS",
    "CartesiaStandin",
    "DeepgramStandin",
    "ElevenLabsStandin",
    "Fault",
    "OpenAIStandin",
    "RecordedRequest",
    "StandinServer",
    "encode_audio",
    "text_duration",
    "tone_pcm",
]
