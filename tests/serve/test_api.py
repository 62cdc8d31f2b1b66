"""The JSON API: every route, bad requests of many kinds (each a JSON error with the
status that names it, and the next good request still answered), and predictions equal to
`convnet predict --json`'s."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from convnet.cli import main  # noqa: E402
from convnet.serve.app import create_app  # noqa: E402
from convnet.serve.limits import Limits  # noqa: E402
from convnet.serve.models import load_served  # noqa: E402
from datasets_helpers import bomb_png  # noqa: E402


def _png(size=(12, 12), fill=200, mode="L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, fill).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(tiny_run):
    app = create_app(load_served([tiny_run], "torch"), Limits(max_body=200_000, max_files=4))
    with TestClient(app) as client:
        yield client


def _good(client) -> None:
    answer = client.post("/v1/models/tiny/predict", content=_png())
    assert answer.status_code == 200 and answer.json()["error"] is None


def test_health_models_card_and_metrics(client, tiny_run):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    [model] = client.get("/v1/models").json()
    assert model["name"] == "tiny" and model["classes"] == ["x", "not-x"]
    card = client.get("/v1/models/tiny").json()
    assert card["record"]["spec"] == model["spec"] and card["summary"]["params"] > 0
    import convnet

    expected = convnet.load(tiny_run).evaluate_data()
    assert card["evaluation"]["on"] == "x-or-not-x test"
    assert card["evaluation"]["confusion"] == expected.confusion.tolist()
    _good(client)
    text = client.get("/metrics").text
    assert 'convnet_requests_total{route="/v1/models/{name}/predict",status="200"}' in text
    assert "convnet_batch_size_count" in text and "convnet_queue_depth 0" in text
    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(text)}  # Prometheus's reader
    predicted = [s.value for s in families["convnet_requests"].samples
                 if s.name == "convnet_requests_total" and s.labels["status"] == "200"
                 and s.labels["route"] == "/v1/models/{name}/predict"]
    assert predicted and predicted[0] >= 1
    assert {"convnet_request_seconds", "convnet_batch_size", "convnet_queue_depth"} <= \
        set(families)
    assert client.get("/").text.startswith("<!doctype html>")


def test_predictions_equal_the_command_lines(client, tiny_run, tmp_path, capsys):
    images = []
    for index, fill in enumerate((30, 220)):
        path = tmp_path / f"{index}.png"
        Image.new("L", (20, 14), fill).save(path)
        images.append(path)
    assert main(["predict", str(tiny_run), *map(str, images), "--json"]) == 0
    expected = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    files = [("images", (p.name, p.read_bytes(), "image/png")) for p in images]
    answers = client.post("/v1/models/tiny/predict?top=3", files=files).json()
    for got, want in zip(answers, expected):
        assert got["file"] == want["file"].rsplit("/", 1)[1]
        assert [t["class"] for t in got["top"]] == [t["class"] for t in want["top"]]
        for name, p in want["probabilities"].items():
            assert abs(got["probabilities"][name] - p) < 1e-6


def test_the_arithmetic_at_one_position_matches_the_run(client, tiny_run, tmp_path):
    import convnet

    found = client.post("/v1/models/tiny/explain/at?layer=1&y=2&x=3&filter=1",
                        content=_png()).json()
    path = tmp_path / "at.png"
    path.write_bytes(_png())
    want = convnet.load(tiny_run).explain_at(path, 1, 2, 3, 1)
    assert abs(found["value"] - want.value) < 1e-5 and abs(found["actual"] - want.actual) < 1e-5
    assert found["after"][0]["layer"] == want.after[0][0]


def _noise_png() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 60).save(buffer, format="PNG")
    return buffer.getvalue()


FIELD_ONLY = b'--b0\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--b0--\r\n'
BIG = b"\x89PNG" + b"\0" * 300_000


@pytest.mark.parametrize("send, status, words", [
    (lambda c: c.post("/v1/models/tiny/predict", content=BIG), 413, "over 200,000 bytes"),
    (lambda c: c.post("/v1/models/tiny/predict", content=iter([BIG[:150_000], BIG[150_000:]])),
     413, "over 200,000 bytes"),
    (lambda c: c.post("/v1/models/tiny/predict", content=b"hello"), 415, "not an image"),
    (lambda c: c.post("/v1/models/tiny/predict", content=b""), 422, "empty body"),
    (lambda c: c.post("/v1/models/tiny/predict", content=_noise_png()[:600]), 422,
     "truncated"),
    (lambda c: c.post("/v1/models/tiny/predict", files={"f": ("a.png", b"text, not a png")}),
     415, "a.png: not an image"),
    (lambda c: c.post("/v1/models/tiny/predict", content=bomb_png()), 422,
     "decompression bomb"),
    (lambda c: c.post("/v1/models/nope/predict", content=_png()), 404, "no model named 'nope'"),
    (lambda c: c.post("/v1/models/tiny/predict?top=0", content=_png()), 422, "top"),
    (lambda c: c.post("/v1/models/tiny/predict?top=many", content=_png()), 422, "top"),
    (lambda c: c.post("/v1/models/tiny/predict",
                      files=[("f", (f"{n}.png", _png(), "image/png")) for n in range(6)]),
     400, "Too many files"),
    (lambda c: c.post("/v1/models/tiny/predict", content=FIELD_ONLY, headers={
        "content-type": "multipart/form-data; boundary=b0"}), 422, "no image in the form"),
    (lambda c: c.post("/v1/models/tiny/explain/at?layer=9&y=0&x=0", content=_png()), 422,
     "layer"),
    (lambda c: c.get("/v1/nothing"), 404, "Not Found"),
])
def test_bad_requests_are_json_errors_and_the_server_goes_on(client, send, status, words):
    answer = send(client)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]
    _good(client)


def test_an_api_key_guards_every_route_but_health(tiny_run):
    app = create_app(load_served([tiny_run], "torch"), api_key="sesame")
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        refused = client.post("/v1/models/tiny/predict", content=_png())
        assert refused.status_code == 401 and "API key" in refused.json()["error"]
        assert client.get("/v1/models", headers={"X-API-Key": "sesame"}).status_code == 200


def test_explain_gives_the_runs_feature_maps_and_gradcam(client, tiny_run, tmp_path):
    import torch

    import convnet

    path = tmp_path / "x.png"
    path.write_bytes(_png((20, 16), 90))
    found = client.post("/v1/models/tiny/explain?class=x", content=path.read_bytes()).json()
    run = convnet.load(tiny_run)
    expected = run.feature_maps(path)
    assert [layer["name"] for layer in found["layers"]] == [info.name for info, _ in expected]
    for layer, (info, values) in zip(found["layers"], expected):
        assert layer["shape"] == list(info.out_shape)
        assert torch.allclose(torch.tensor(layer["values"]), values, atol=1e-4)
    assert found["gradcam"]["class"] == "x"
    assert torch.allclose(torch.tensor(found["gradcam"]["values"]), run.gradcam(path, "x"),
                          atol=1e-3)
    assert found["input"]["values"] == run.image(path).tolist()
    refused = client.post("/v1/models/tiny/explain?class=zebra", content=_png())
    assert refused.status_code == 422 and "'zebra' is not one of" in refused.json()["error"]


def test_several_runs_are_served_side_by_side_by_name(tiny_run, tmp_path):
    import shutil

    other = shutil.copytree(tiny_run, tmp_path / "tiny")  # the same folder name twice
    app = create_app(load_served([tiny_run, other], "torch"))
    with TestClient(app) as client:
        names = [model["name"] for model in client.get("/v1/models").json()]
        assert names == ["tiny", "tiny-2"]
        for name in names:
            assert client.post(f"/v1/models/{name}/predict", content=_png()).status_code == 200
