"""The submission log (data_dir/dres/submissions.jsonl): every answer sent to DRES, written before
it leaves and again with DRES's verdict, so nothing is sent twice by accident (ui/contest/client.py
refuses a repeat unless asked `again`). One JSON object a line; the app's sessions and the command
line share it under an exclusive lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path


class SubmissionLog:
    def __init__(self, path: Path):
        self.path = path

    @contextlib.contextmanager
    def locked(self):
        """The log, opened for reading and appending under an exclusive lock (released at the
        block's end), as a `LockedLog`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield LockedLog(f)

    def record(self, entry: dict) -> None:
        with self.locked() as log:
            log.append(entry)


class LockedLog:
    def __init__(self, f):
        self._f = f

    def sent_before(self, key: dict) -> list[dict]:
        """The earlier submissions of this answer to this task that may have been judged: each
        attempt's latest entry, unless it says DRES did not judge it (entries of older evr
        versions, without an attempt id, count each)."""
        latest: dict[object, dict] = {}
        for i, e in enumerate(self.entries()):
            if {k: e.get(k) for k in key} == key:
                latest[e.get("attempt") or i] = e
        return [e for e in latest.values() if e.get("judged", True)]

    def entries(self) -> list[dict]:
        self._f.seek(0)
        out = []
        for line in self._f:
            try:
                out.append(json.loads(line))
            except ValueError:  # a line cut short by a crash: the others still count
                continue
        return out

    def append(self, entry: dict) -> None:
        self._f.seek(0, os.SEEK_END)
        self._f.write(json.dumps(entry, ensure_ascii=False, allow_nan=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
