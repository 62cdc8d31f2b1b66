"""The model so far (`convnet.make.early`): a fine-tune's head as soon as it is fitted,
then each better epoch, as run folders that load and answer as the network did."""

from __future__ import annotations

import json

import torch

import convnet
from convnet.make.early import INFO, newest
from convnet.runs.predictor import Predictor
from convnet.training.callbacks import Callback
from resume_helpers import rgb_folder

ARCH = "conv6k3-bn-relu-maxpool2-conv8k3-bn-relu-gap-fc"


class Versions(Callback):
    """The newest early version after the head and after each epoch, as written then."""

    def __init__(self, folder):
        self.folder, self.seen = folder, []

    def _look(self) -> None:
        found = newest(self.folder)
        if found is not None:
            version, info = found
            self.seen.append((version.name, info,
                              convnet.load(version).predictor.probabilities(self.images)))

    def on_train_start(self, info) -> None:
        self.head = info.head_val_acc
        self._look()

    def on_epoch_end(self, stats) -> None:
        self._look()


def test_a_fine_tunes_head_then_each_better_epoch_answer_before_the_run_ends(tmp_path):
    data = rgb_folder(tmp_path / "three", classes=3, train=12, test=3)
    base = tmp_path / "base"
    convnet.train(data=str(data), arch=ARCH, epochs=1, batch_size=8, out=base, image_size=16)
    early = tmp_path / "early"
    versions = Versions(early)
    images = convnet.load(base).own_data().test.images  # (9, 3, 16, 16) uint8
    versions.images = images
    result = convnet.train(data=str(data), init=str(base), epochs=3, batch_size=8,
                           image_size=16, val_split=0.3, out=tmp_path / "tuned",
                           early=early, callbacks=[versions])
    head = versions.seen[0]
    assert head[1] == {"after": "the new head alone", "epoch": 0, "val_acc": versions.head}
    # the epochs kept as the best so far (the later on a tie), from the head alone: the
    # run's epoch 0, which an epoch must match to be kept
    kept, best = [0], versions.head
    for stats in result.history:
        if stats.val_acc >= best:
            best = stats.val_acc
            kept.append(stats.epoch)
    # looked at after every epoch: the newest version then is the last epoch kept
    assert [info["epoch"] for _, info, _ in versions.seen[1:]] == \
        [max(e for e in kept if e <= stats.epoch) for stats in result.history]
    assert kept[-1] == result.best_epoch
    # the newest version holds the kept weights: before calibration, the run's own logits
    run = result.run
    plain = Predictor(run.network, run.record.normalization, run.classes, run.predictor.flip_tta)
    assert torch.allclose(versions.seen[-1][2], plain.probabilities(images), atol=1e-5)
    # only the newest version is kept, whole, with what it is
    kept_folders = sorted(p.name for p in early.iterdir())
    assert kept_folders == [versions.seen[-1][0]]
    assert json.loads((early / kept_folders[0] / INFO).read_text())["epoch"] == \
        result.best_epoch


def test_no_folder_no_versions_and_an_unfinished_version_is_not_the_newest(tmp_path):
    assert newest(tmp_path / "none") is None
    (tmp_path / "v" / "1").mkdir(parents=True)  # being written: no model.json yet
    assert newest(tmp_path / "v") is None
