"""A process's threads as Linux sees them (``/proc/<pid>/task``): how many of each name,
and the CPU each name has used — the Rust threads of livekit's rtc SDK (``tokio-…``,
WebRTC's) and onnxruntime's included, which a Python profiler does not see."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _tasks(pid: int) -> list[Path]:
    try:
        return list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:  # the thread ended meanwhile
        return ""


def thread_names(pid: int) -> Counter[str]:
    """Threads per name."""
    return Counter(name for t in _tasks(pid) if (name := _read(t / "comm").strip()))


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class ThreadCpu:
    """CPU per thread name over a stretch of time, threads that ended meanwhile included
    (up to their last sample): ``sample()`` every so often, then ``used()``."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._first: dict[str, float] = {}
        self._last: dict[str, tuple[str, float]] = {}
        self.sample()
        self._first = {tid: cpu for tid, (_, cpu) in self._last.items()}

    def sample(self) -> None:
        for t in _tasks(self._pid):
            name, stat = _read(t / "comm").strip(), _read(t / "stat")
            if name and stat:
                fields = stat.rsplit(")", 1)[1].split()  # after the name: it may hold spaces
                utime, stime = int(fields[11]), int(fields[12])
                self._last[t.name] = (name, (utime + stime) / _TICKS)

    def used(self) -> list[tuple[str, float]]:
        """(thread name, CPU-seconds), most first."""
        out: dict[str, float] = {}
        for tid, (name, cpu) in self._last.items():
            out[name] = out.get(name, 0.0) + cpu - self._first.get(tid, 0.0)
        return sorted(out.items(), key=lambda item: -item[1])
