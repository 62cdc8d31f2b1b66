"""TensorBoard and MLflow, read back by their own readers: every epoch's scalars, the
images, the params, the artifacts, and the logged model predicting what convnet does.
A run stopped and resumed logs to the same TensorBoard logdir and the same MLflow run."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image

import convnet
from conftest import TINY_ARCH, TINY_DATA
from resume_helpers import run_child

CONFIG = {"data": TINY_DATA, "arch": TINY_ARCH, "epochs": 4, "batch_size": 16,
          "checkpoint_every": 0}


def _metrics(folder) -> list[dict]:
    with (folder / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_tensorboard_event_files_hold_every_epoch_and_the_images(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = convnet.train(**CONFIG, log="tensorboard", out=tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"),
                              size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    rows = _metrics(run.path)
    for tag, column in (("loss/train", "train_loss"), ("accuracy/val", "val_acc"),
                        ("lr", "lr")):
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2, 3, 4]
        assert [e.value for e in logged] == pytest.approx([float(r[column]) for r in rows])
    assert {"predictions", "confusion (rows: true class)"} <= set(events.Tags()["images"])
    assert events.Tags()["graph"]


def test_mlflow_keeps_params_metrics_artifacts_and_a_model_that_predicts(tmp_path,
                                                                         monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{tmp_path / 'mlruns'}")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    out = tmp_path / "run"
    stopped = run_child(out, "epoch", 2, {**CONFIG, "log": "tensorboard,mlflow"})
    assert stopped.returncode == -9, stopped.stderr[-2000:]
    run = convnet.train(resume=out)  # the same MLflow run and logdir, epochs 3 and 4
    run_id = json.loads((out / "mlflow.json").read_text())["run_id"]
    client = mlflow.tracking.MlflowClient()
    assert len(client.search_runs(["0"])) == 1
    logged = client.get_run(run_id)
    assert logged.data.params["arch"] == TINY_ARCH and logged.data.params["epochs"] == "4"
    assert float(logged.data.params["lr"]) == convnet.load(out).record.config.lr  # resolved
    history = client.get_metric_history(run_id, "loss_train")
    assert sorted({m.step for m in history}) == [1, 2, 3, 4]
    assert logged.data.metrics["test_accuracy"] == pytest.approx(run.test.accuracy)
    artifacts = {a.path for a in client.list_artifacts(run_id, "run")}
    assert {"run/model.json", "run/model.safetensors"} <= artifacts

    images = []
    for index in range(3):
        path = tmp_path / f"{index}.png"
        Image.new("L", (12, 12), 60 * index).save(path)
        images.append(str(path))
    import pandas as pd

    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    frame = model.predict(pd.DataFrame({"path": images}))
    expected = convnet.load(out).predict_files(images)
    for (_, row), answer in zip(frame.iterrows(), expected):
        assert row["prediction"] == answer.top(1)[0][0]
        for name, probability in answer.probabilities.items():
            assert row[name] == pytest.approx(probability, abs=1e-6)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert sorted({e.step for e in events.Scalars("loss/train")}) == [1, 2, 3, 4]


def test_a_store_that_does_not_answer_is_one_line_before_training(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{tmp_path / 'mlruns'}")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(convnet.ConvnetError, match="does not answer"):
        convnet.train(**CONFIG, log="mlflow", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_unknown_logger_or_a_missing_library_is_one_line_before_training(tmp_path,
                                                                            monkeypatch):
    from convnet.training.config import TrainConfig

    with pytest.raises(convnet.ConvnetError, match="log must be one of tensorboard, mlflow"):
        TrainConfig(log="wandb")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(convnet.ConvnetError, match="needs the tensorboard package"):
        convnet.train(**CONFIG, log="tensorboard", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
