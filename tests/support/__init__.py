"""Helpers the tests share (audio, the utterance corpus, usage writers); no tests here."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The repository's root."""
