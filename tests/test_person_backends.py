"""Which persons backend `persons.backend = "auto"` takes, with and without the mediapipe extra."""

from __future__ import annotations

import pytest

from evr.indexer.analyzers import persons
from evr.indexer.analyzers.persons import PersonAnalyzer, PersonSettings
from evr.indexer.analyzers.persons.mediapipe_backend import MediapipePersons
from evr.indexer.analyzers.persons.torchvision_backend import TorchvisionPersons
from evr.indexer.encoders import ModelUnavailableError

pytestmark = pytest.mark.unit


@pytest.fixture
def loads(monkeypatch):
    """Backends' loads recorded, not run (their models are the e2e tests')."""
    loaded = []
    monkeypatch.setattr(TorchvisionPersons, "load", lambda self: loaded.append("torchvision"))
    monkeypatch.setattr(persons, "weights_cached", lambda: False)
    return loaded


def test_without_the_extra_auto_takes_torchvision_on_a_cpu(monkeypatch, loads):
    monkeypatch.setattr(persons, "mediapipe_installed", lambda: False)
    chosen = PersonAnalyzer(PersonSettings(device="cpu")).backend
    assert isinstance(chosen, TorchvisionPersons) and loads == ["torchvision"]


def test_with_the_extra_auto_keeps_mediapipe_offline_on_a_cpu(monkeypatch, loads):
    monkeypatch.setattr(persons, "mediapipe_installed", lambda: True)
    assert isinstance(PersonAnalyzer(PersonSettings(device="cpu")).backend, MediapipePersons) and loads == []


def test_mediapipe_asked_for_without_the_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr("evr.indexer.analyzers.persons.mediapipe_backend.mediapipe_installed", lambda: False)
    with pytest.raises(ModelUnavailableError, match=r'pip install "evr\[mediapipe\]"'):
        PersonAnalyzer(PersonSettings(backend="mediapipe")).load()
