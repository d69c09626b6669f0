"""Reading the files of an archive that someone else laid out: only regular files are read.

A FIFO named `002.json` blocks a reader forever (no writer ever comes), a directory named
`001.jpg` or a symbolic link that loops fails only when opened, and a device can be read without
end. Each is opened here without blocking (O_NONBLOCK makes opening a FIFO return at once) and
refused by what it is before a byte is read, with an OSError that names it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegularFile(OSError):
    """A path that is there but is not a regular file."""


def kind_of(mode: int) -> str:
    """What a file of this st_mode is, in words ("a FIFO (named pipe)")."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular(path: str | os.PathLike) -> bytes:
    """The bytes of the regular file at `path` (symbolic links followed); NotRegularFile for a
    FIFO, folder, socket or device, any other OSError (a looping link, a name too long, no
    permission) as raised."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"{Path(path).name} is {kind_of(mode)}, not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def why_unreadable(exc: OSError) -> str:
    """An OSError as the few words a report gives: NotRegularFile's own, else the system's."""
    if isinstance(exc, NotRegularFile):
        return str(exc)
    return exc.strerror or str(exc) or type(exc).__name__
