"""Optional dependencies: one check, one message, one install hint, before any work."""

from __future__ import annotations

import importlib.util

import pytest

from convnet import extras
from convnet.errors import ConvnetError


def test_a_missing_extra_is_named_with_its_install_hint(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "cleanlab" else real(name))
    assert extras.missing("clean") == ["cleanlab"] and not extras.installed("clean")
    with pytest.raises(ConvnetError, match=r"^Ranking needs cleanlab, which is not installed: "
                       r"pip install 'convnet\[clean\]'\.$"):
        extras.require("clean", "Ranking needs cleanlab")
    extras.require("plots", "Pictures need matplotlib")  # installed: nothing raised


def test_every_extra_named_is_one_pyproject_declares():
    from pathlib import Path

    import tomllib

    declared = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert set(extras.EXTRAS) <= set(declared["project"]["optional-dependencies"])


def test_suspects_says_cleanlab_is_missing_before_any_fold_trains(monkeypatch):
    from convnet.clean import out_of_fold, suspects

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "cleanlab" else real(name))
    monkeypatch.setattr(out_of_fold, "cnn_probabilities",
                        lambda *args, **kwargs: pytest.fail("a fold trained first"))
    with pytest.raises(ConvnetError, match=r"needs cleanlab .*pip install 'convnet\[clean\]'"):
        suspects.find_suspects("digits", method="cnn")
