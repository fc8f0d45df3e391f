"""Our own livekit plugins: local Vosk/faster-whisper STT, Piper TTS, and the offline responder LLM.

Each module is imported lazily by its vendor module (``providers.catalogue.vendors``), so a
worker that uses only cloud providers never imports vosk, piper or ctranslate2.
"""
