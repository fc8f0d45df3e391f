"""The ``--metadata`` flag ``simulate`` and ``call`` share: bad JSON is one clear line
(exit 2), however deep, never a RecursionError traceback."""

from __future__ import annotations

import argparse

import pytest

from agent.tools.call_args import job_metadata


def test_deep_or_broken_metadata_is_refused_in_one_line() -> None:
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(ValueError, match="--metadata: nested deeper than 32 levels"):
        job_metadata(argparse.Namespace(metadata=deep, org=None))
    with pytest.raises(ValueError, match="--metadata: not JSON"):
        job_metadata(argparse.Namespace(metadata="{", org=None))
