"""The repository's top folders install and import as one package, evr: indexer/ is evr.indexer,
and so on. pyproject.toml holds everything else; setuptools' table form cannot add a prefix to the
packages it finds, so they are listed here (every subpackage, found, not typed)."""

from setuptools import find_packages, setup

ROOMS = ("indexer", "search", "storage", "ui")

setup(
    packages=[f"evr.{name}" for name in find_packages(include=[f"{room}*" for room in ROOMS])],
    package_dir={f"evr.{room}": room for room in ROOMS},
)
