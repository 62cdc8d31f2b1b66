"""The studio's API: upload, train in a child process, follow, predict, cancel, refuse."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from studio_helpers import digits_zip, evil_zip  # noqa: E402

from conftest import TINY_ARCH  # noqa: E402
from convnet.runs.calibration import Calibration  # noqa: E402
from convnet.studio.app import create_app  # noqa: E402

ENDED = ("finished", "failed", "cancelled")


def _upload(client, name: str, data: bytes):
    return client.post("/v1/datasets", data={"name": name},
                       files={"file": (f"{name}.zip", data, "application/zip")})


def _until(client, id: str, states=ENDED, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = client.get(f"/v1/jobs/{id}").json()
        if found["state"] in states:
            return found
        time.sleep(0.2)
    raise AssertionError(f"job {id} still {found['state']} after {seconds} s")


def test_a_dataset_trains_into_a_model_that_answers_predict(tmp_path):
    with TestClient(create_app(tmp_path / "ws")) as client:
        made = _upload(client, "pair", digits_zip(40, wrapper="pair/"))
        assert made.status_code == 201
        assert made.json()["counts"] == {"train": {"3": 40, "7": 40}}
        assert made.json()["problem"] is None
        job = client.post("/v1/jobs", json={"dataset": "pair", "options": {
            "arch": TINY_ARCH, "epochs": 3, "batch_size": 16}}).json()
        done = _until(client, job["id"])
        assert done["state"] == "finished", done["error"]
        assert done["model"] == job["id"] and [m["epoch"] for m in done["metrics"]] == [1, 2, 3]
        assert "planned from 80 grayscale training images" in done["plan"]
        assert done["head"] is None  # from scratch: no head scored before epoch 1
        events = client.get(f"/v1/jobs/{job['id']}/events").text
        assert json.loads(events.split("data: ")[-1])["state"] == "finished"
        assert [m["name"] for m in client.get("/v1/models").json()] == [job["id"]]
        image = next((tmp_path / "ws" / "datasets" / "pair" / "7").iterdir()).read_bytes()
        answer = client.post(f"/v1/models/{job['id']}/predict", content=image).json()
        assert set(answer["probabilities"]) == {"3", "7"}
        assert abs(sum(answer["probabilities"].values()) - 1) < 1e-5
        assert client.get(f"/v1/jobs/{job['id']}/files/confusion.png").status_code == 200
        assert client.get(f"/v1/jobs/{job['id']}/files/../model.json").status_code == 404
        download = client.get(f"/v1/jobs/{job['id']}/download")
        assert download.headers["content-type"] == "application/zip"


@pytest.mark.parametrize("kind", ["slip", "absolute", "symlink", "bomb"])
def test_hostile_zips_get_a_4xx_and_write_nothing(tmp_path, kind):
    with TestClient(create_app(tmp_path / "ws")) as client:
        answer = _upload(client, "evil", evil_zip(kind))
        assert 400 <= answer.status_code < 500 and "error" in answer.json()
        assert client.get("/v1/datasets").json() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]
    assert list((tmp_path / "ws" / "datasets").iterdir()) == []


def test_bad_requests_name_the_problem(tmp_path):
    with TestClient(create_app(tmp_path / "ws")) as client:
        assert _upload(client, "pair", digits_zip(3)).status_code == 201
        assert _upload(client, "pair", digits_zip(3)).status_code == 409
        bad = client.post("/v1/jobs", json={"dataset": "pair", "options": {"epochs": -1}})
        assert bad.status_code == 422 and "epochs" in bad.json()["error"]
        fixed = client.post("/v1/jobs", json={"dataset": "pair", "options": {"data": "x"}})
        assert fixed.status_code == 422 and "data" in fixed.json()["error"]
        assert client.post("/v1/jobs", json={"dataset": "nope"}).status_code == 404
        assert client.get("/v1/jobs/job-9999").status_code == 404
        assert client.post("/v1/models/job-9999/predict", content=b"x").status_code == 404


def test_an_api_key_guards_every_route_but_the_health_checks(tmp_path):
    with TestClient(create_app(tmp_path / "ws", api_key="s3cret")) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/datasets").status_code == 401
        assert client.get("/").status_code == 401
        assert client.get("/v1/datasets", headers={"X-API-Key": "s3cret"}).json() == []


def test_a_page_made_dataset_gets_classes_images_and_a_rename(tmp_path):
    with TestClient(create_app(tmp_path / "ws")) as client:
        assert client.post("/v1/datasets", data={"name": "my pets"}).status_code == 201
        for cls in ("cat", "dog"):
            assert client.post("/v1/datasets/my pets/classes",
                               json={"name": cls}).status_code == 201
        images = [("files", (f"{i}.png", digits_zip(1)[:10], "image/png")) for i in range(3)]
        added = client.post("/v1/datasets/my pets/classes/cat/images", files=images)
        assert added.json()["counts"]["train"] == {"cat": 3, "dog": 0}
        renamed = client.patch("/v1/datasets/my pets/classes/cat", json={"name": "kitten"})
        assert renamed.json()["counts"]["train"] == {"dog": 0, "kitten": 3}
        assert client.patch("/v1/datasets/my pets/classes/nope",
                            json={"name": "x"}).status_code == 404


def test_a_cancelled_job_stops_at_a_checkpoint_and_resumes_to_the_end(tmp_path):
    with TestClient(create_app(tmp_path / "ws")) as client:
        assert _upload(client, "pair", digits_zip(100)).status_code == 201
        id = client.post("/v1/jobs", json={"dataset": "pair", "options": {
            "arch": TINY_ARCH, "epochs": 12, "batch_size": 4}}).json()["id"]
        queued = client.post("/v1/jobs", json={"dataset": "pair", "options": {
            "arch": TINY_ARCH, "epochs": 1}}).json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/jobs/{id}").json()["epoch"] < 2 and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get(f"/v1/jobs/{queued}").json()["state"] == "queued"  # one at a time
        assert client.delete(f"/v1/jobs/{queued}").json()["state"] == "cancelled"
        client.delete(f"/v1/jobs/{id}")
        stopped = _until(client, id)
        assert stopped["state"] == "cancelled" and stopped["epoch"] < 12
        # before the run ends, its model so far answers: the best epoch yet
        early = stopped["early"]
        assert stopped["model"] == id and 1 <= early["epoch"] < 12
        assert early["after"] == f"epoch {early['epoch']} of 12"
        image = next((tmp_path / "ws" / "datasets" / "pair" / "7").iterdir()).read_bytes()
        answer = client.post(f"/v1/models/{id}/predict", content=image).json()
        assert set(answer["probabilities"]) == {"3", "7"}
        record = client.get(f"/v1/models/{id}").json()["record"]
        assert record["metrics"]["best_epoch"] == early["epoch"]
        assert record["calibration"] == Calibration().to_dict()  # fitted once it ends
        assert client.post(f"/v1/jobs/{id}/resume").json()["state"] == "queued"
        done = _until(client, id)
        assert done["state"] == "finished" and done["early"] is None
        assert not (tmp_path / "ws" / "jobs" / f"{id}.early").exists()
        served = client.get("/v1/models").json()
        assert [m["name"] for m in served if m["name"] == id] == [id]
        final = client.post(f"/v1/models/{id}/predict", content=image).json()
        assert set(final["probabilities"]) == {"3", "7"}
        assert client.get(f"/v1/models/{id}").json()["record"]["calibration"] != \
            Calibration().to_dict()  # the finished run now answers
        assert [row["epoch"] for row in done["metrics"]] == list(range(1, 13))
        assert client.post(f"/v1/jobs/{id}/resume").status_code == 409
        assert client.get(f"/v1/jobs/{queued}").json()["state"] == "cancelled"  # stays so


def test_the_studio_refuses_a_public_host_without_a_key(capsys, monkeypatch):
    import uvicorn

    from convnet.cli import main

    def never(*args, **kwargs):  # the check comes first: nothing ever listens here
        raise AssertionError("the studio started a server on a public address")

    monkeypatch.setattr(uvicorn, "run", never)
    assert main(["studio", "--host", "0.0.0.0"]) == 1
    assert "give an api_key too" in capsys.readouterr().err.replace("--api-key", "api_key")


def test_a_class_card_gets_thumbnails_of_its_images(tmp_path):
    import io

    import numpy as np
    from PIL import Image

    photo = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(photo, "PNG")
    with TestClient(create_app(tmp_path / "ws")) as client:
        client.post("/v1/datasets", data={"name": "pets"})
        files = [("files", ("big.png", photo.getvalue(), "image/png")),
                 ("files", ("broken.png", b"not a picture", "image/png"))]
        client.post("/v1/datasets/pets/classes/cat/images", files=files)
        found = client.get("/v1/datasets/pets/classes/cat/thumbs/0")  # big.png, by name
        assert found.status_code == 200 and found.headers["content-type"] == "image/png"
        small = Image.open(io.BytesIO(found.content))
        assert small.size == (43, 64)  # at most 64 px a side, the aspect ratio kept
        reference = Image.fromarray(pixels)
        reference.thumbnail((64, 64))
        assert np.array_equal(np.asarray(small), np.asarray(reference))
        broken = client.get("/v1/datasets/pets/classes/cat/thumbs/1")
        assert broken.status_code == 415 and "not a readable image" in broken.json()["error"]
        for missing in ("cat/thumbs/2", "dog/thumbs/0", "../cat/thumbs/0"):
            assert client.get(f"/v1/datasets/pets/classes/{missing}").status_code == 404


def test_a_fine_tunes_head_score_reaches_the_job_before_epoch_one(tmp_path):
    """The progress file keeps the head's validation accuracy from the start of training,
    which the page draws at epoch 0 before any epoch ends."""
    from convnet.studio.worker import ProgressFile
    from convnet.training.callbacks import TrainStart

    progress = ProgressFile(tmp_path / "job.progress.json")
    progress.on_train_start(TrainStart(3, 10, 100, 20, 30, "cpu", "efficientnet-lite0",
                                       3_000_000, str(tmp_path), head_val_acc=0.85))
    written = json.loads((tmp_path / "job.progress.json").read_text())
    assert written["head_val_acc"] == 0.85 and written["history"] == []
