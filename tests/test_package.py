"""What `pip install evr` puts into site-packages: one package, evr, whose subpackages are the
repository's top folders (setup.py maps them)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

ROOMS = ("indexer", "search", "storage", "ui")


def test_the_wheel_holds_one_package_evr(tmp_path):
    source = tmp_path / "source"  # built from a copy: a build in the checkout would leave build/ there
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, source)
    for room in ROOMS:
        shutil.copytree(REPO / room, source / room, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("evr-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"evr"}
    assert {f"evr/{room}/__init__.py" for room in ROOMS} <= set(names)
    assert "evr/indexer/analyzers/ocr/__init__.py" in names  # subpackages are found, not listed
    assert any(n.startswith("evr/ui/web/") and n.endswith(".js") for n in names)  # the results element
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "evr = evr.ui.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_no_code_imports_a_room_by_its_folders_name():
    """Not even in a string a subprocess runs: from the repository's root, `import search` would
    still find the folder (a second copy of every class, or a script that silently falls back)."""
    old = re.compile(r"(?:^|[^.\w])(?:from|import) (?:indexer|search|storage|ui)(?:\.\w+)*(?: import|\s*$|;|\\n)", re.M)
    files = subprocess.run(
        ["git", "ls-files", "*.py", "*.sh", "Makefile"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    found = [f"{name}: {m.group(0).strip()}" for name in files for m in old.finditer((REPO / name).read_text())]
    assert found == []
