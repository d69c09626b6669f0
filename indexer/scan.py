"""Finding the video files to index."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from .files import kind_of


def find_videos(paths: Iterable[Path], extensions: Iterable[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(files to index, [(path, why it cannot be read)]): files named directly, plus video files
    (by extension) anywhere below named folders. A video-named symlink that is broken or loops
    is reported, not skipped without a word.

    Raises FileNotFoundError for a path that does not exist: a typo must not look like an
    empty folder."""
    check_paths(paths)
    exts = {e.lower() for e in extensions}
    found: dict[Path, None] = {}
    unreadable: dict[Path, str] = {}

    def take(f: Path) -> None:
        try:
            real = f.resolve(strict=True)
            mode = real.stat().st_mode
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, on Python < 3.13
            unreadable[f] = _why(f, exc)
            return
        if stat.S_ISREG(mode):
            found[real] = None
        else:  # a FIFO would block its decoder forever, a device never end
            unreadable[f] = f"cannot read: {kind_of(mode)}, not a regular file"

    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.suffix.lower() in exts and not f.name.startswith(".") and (f.is_file() or f.is_symlink()):
                    take(f)
        else:
            take(p)
    return list(found), list(unreadable.items())


def check_paths(paths: Iterable[Path]) -> None:
    """FileNotFoundError for a path that does not exist (a broken symlink exists: it is
    reported when indexed). Run before anything is written, so a typo changes nothing."""
    for p in paths:
        p = Path(p).expanduser()
        if not (p.exists() or p.is_symlink()):
            raise FileNotFoundError(f"no such file or folder: {p}")


def _why(path: Path, exc: BaseException) -> str:
    if path.is_symlink():
        target = os.readlink(path)
        if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
            return f"cannot read: symbolic link loop ({path} -> {target})"
        return f"cannot read: broken symbolic link ({path} -> {target})"
    return f"cannot read: {getattr(exc, 'strerror', None) or exc}"
