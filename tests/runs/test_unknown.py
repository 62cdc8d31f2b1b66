"""The candidate "unknown" scores and how they are judged, against reference
implementations: scikit-learn's ROC area, numpy's Mahalanobis distance, and the network's
own forward pass for the classifier's input; and a trained run's verdict, the same from
predict, serve's API and the ONNX file, with bad requests refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import convnet
from convnet.runs.unknown import (
    CANDIDATES,
    Gaussians,
    auroc,
    confident_rank,
    false_positives,
    score,
    threshold,
)

FORMAT1 = Path(__file__).resolve().parent.parent / "fixtures" / "run-format1"


def test_the_roc_area_is_scikit_learns_ties_included():
    metrics = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(0)
    known = torch.randint(0, 20, (300,), generator=generator).float()  # many ties
    unknown = torch.randint(5, 30, (200,), generator=generator).float()
    truth = np.r_[np.zeros(300), np.ones(200)]
    expected = metrics.roc_auc_score(truth, np.r_[known.numpy(), unknown.numpy()])
    assert auroc(known, unknown) == pytest.approx(expected, abs=1e-9)
    assert auroc(torch.zeros(3), torch.ones(4)) == 1.0


def test_the_threshold_keeps_the_share_asked_and_counts_the_unknown_let_through():
    known, unknown = torch.arange(100.0), torch.arange(50.0, 150.0)
    # the 99th of 100: Beta(99, 2) is at or above 0.95 with 96%, Beta(98, 3) with 88%
    assert threshold(known.flip(0), 0.95) == 98.0 == threshold(known, 0.95)
    assert threshold(torch.arange(10.0), 0.95) == 9.0  # too few for 90%: the highest
    generator = torch.Generator().manual_seed(0)
    kept = torch.tensor([float((torch.randn(5000, generator=generator) <=
                                threshold(torch.randn(200, generator=generator), 0.9))
                               .double().mean()) for _ in range(300)])
    # new known images kept: at least the share asked in at least 90% of the draws
    assert float((kept >= 0.9).double().mean()) >= 0.88  # the sampling of 300 draws
    assert false_positives(known, unknown, 0.95) == 0.45  # 50..94.05 of 50..149


def test_the_mahalanobis_distance_is_numpys():
    generator = torch.Generator().manual_seed(1)
    embeddings = torch.randn(400, 6, generator=generator) @ torch.randn(6, 6, generator=generator)
    labels = torch.randint(0, 3, (400,), generator=generator)
    embeddings += labels[:, None].float() * 2
    fitted = Gaussians.fit(embeddings, labels, 3)
    x, y = embeddings.double().numpy(), labels.numpy()
    means = np.stack([x[y == k].mean(0) for k in range(3)])
    centred = x - means[y]
    covariance = centred.T @ centred / (len(x) - 1)
    precision = np.linalg.inv(covariance + 1e-3 * covariance.diagonal().mean() * np.eye(6))
    probe = torch.randn(5, 6, generator=generator)
    gaps = probe.double().numpy()[:, None] - means[None]
    expected = np.einsum("nkd,de,nke->nk", gaps, precision, gaps).min(1)
    assert np.allclose(fitted.distance(probe).numpy(), expected, rtol=1e-4)
    scores = score("mahalanobis", torch.zeros(5, 3), probe, fitted)
    assert torch.equal(scores, fitted.distance(probe))


def test_a_precision_without_a_cholesky_factor_still_gives_numpys_distance():
    """The distance runs through a factor F of the precision (F @ F.T); a precision that is
    only semi-definite in float32 has no Cholesky factor, and takes its eigen square root."""
    generator = torch.Generator().manual_seed(2)
    half = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    precision = (half @ half.T).float()  # rank 3 of 6: Cholesky fails
    assert torch.linalg.cholesky_ex(precision.double())[1] != 0
    means = torch.randn(4, 6, generator=generator)
    probe = torch.randn(7, 6, generator=generator)
    gaps = probe.double().numpy()[:, None] - means.double().numpy()[None]  # (7, 4, 6)
    expected = np.einsum("nkd,de,nke->nk", gaps, precision.double().numpy(), gaps).min(1)
    found = Gaussians(means, precision).distance(probe).numpy()
    assert np.allclose(found, expected, rtol=1e-4, atol=1e-4)


def test_msp_and_energy_rise_as_the_logits_flatten():
    sure, unsure = torch.tensor([[8.0, 0.0, 0.0]]), torch.tensor([[0.5, 0.4, 0.3]])
    for kind in ("msp", "energy"):
        assert score(kind, unsure) > score(kind, sure)
    assert score("msp", sure, temperature=4.0) > score("msp", sure)  # calibrated: less sure
    with pytest.raises(convnet.ConvnetError, match=r"kind must be one of msp, energy, "
                       r"mahalanobis, knn\. Received: kind='lof'\."):
        score("lof", sure)
    assert CANDIDATES == ("msp", "energy", "mahalanobis", "knn")


def test_knn_is_one_minus_the_kth_nearest_cosine():
    reference = torch.eye(4)[:3] * 5  # three unit directions, scaled
    probe = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    found = score("knn", torch.zeros(2, 2), probe, reference=reference)
    # with 3 references, the 10th nearest is the 3rd: cosine 0 for both probes
    assert torch.allclose(found, torch.tensor([1.0, 1.0]))
    one = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    reference = torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 12)
    assert float(score("knn", torch.zeros(1, 2), one, reference=reference)[0]) == \
        pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("spec", ["conv4k3-relu-maxpool2-fc16-relu-dropout0.2-fc",
                                  "conv4k3-bn-relu-gap-fc"])
def test_the_embedding_is_what_the_classifier_sees(spec):
    net = convnet.build(spec, "12x12x1", num_classes=3).eval()
    x = torch.randn(4, 1, 12, 12)
    embedding = net.forward_embedding(x)  # (4, D)
    assert embedding.dim() == 2 and len(embedding) == 4
    assert torch.allclose(net.classifier(embedding), net(x), atol=1e-6)


@pytest.mark.parametrize("spec, reference", [
    # a dense layer and its ReLU last: the dense layer's output
    ("conv4k3-relu-maxpool2-fc16-relu-fc", lambda out: out["fc16"]),
    # EfficientNet's ending (normalise, ReLU6, global pool): the pooled normalised maps
    ("conv8k3-bn-relu6-gap-dropout0.2-fc", lambda out: out["bn"].mean((2, 3))),
    # the pool is run before the ReLU (they commute): the pooled maps before the ReLU
    ("conv4k3-relu-maxpool2-fc",
     lambda out: torch.nn.functional.max_pool2d(out["conv4k3"], 2).flatten(1)),
])
def test_the_features_before_the_last_activation_are_its_input(spec, reference):
    net = convnet.build(spec, "12x12x1", num_classes=3).eval()
    x = torch.randn(4, 1, 12, 12)
    embedding, raw = net.forward_embeddings(x)  # (4, D) each
    assert torch.equal(embedding, net.forward_embedding(x))
    outputs = {info.name: out for info, out in net.forward_intermediates(x)}
    assert torch.allclose(raw, reference(outputs), atol=1e-6)
    assert not torch.allclose(raw, embedding)  # the activation did change something
    skips = convnet.build("conv4k3-relu-skip-conv4k3p1-relu-add-gap-fc", "12x12x1", 3).eval()
    assert all(torch.equal(a, b) for a, b in zip(*skips.forward_embeddings(x), strict=True))


def test_the_run_says_unknown_for_images_unlike_its_training_images(trained, tmp_path,
                                                                     capsys):
    from PIL import Image

    from convnet.cli import main

    run = convnet.load(trained.path)
    saved = json.loads((trained.path / "model.json").read_text())["unknown"]
    assert saved["kind"] == "mahalanobis-unit" and run.predictor.detector is not None
    val = run.record.validation.draw(run.own_data())[1]
    known = run.predictor.predict(val.images, unknown=0.95)
    kept = sum(not answer.unknown for answer in known) / len(known)
    # set on these images: the confident rank's score is the last one known
    assert kept == min(confident_rank(len(known), 0.95), len(known)) / len(known)
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise"
    noise.mkdir()
    for index in range(6):  # static: nothing like an X or another shape
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(
            noise / f"{index}.png")
    assert main(["predict", str(trained.path), str(noise), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(row["unknown"] and row["unknown_kept"] == 0.95 for row in rows)
    assert main(["predict", str(trained.path), str(noise), "--unknown", "off"]) == 0
    assert "unknown (looks like" not in capsys.readouterr().out
    assert main(["predict", str(trained.path), str(noise), "--sort-into",
                 str(tmp_path / "sorted")]) == 0
    assert sorted(p.name for p in (tmp_path / "sorted").iterdir()) == [
        "predictions.csv", "unknown"]
    assert "unknown,unknown_score" in (tmp_path / "sorted" / "predictions.csv").read_text()


@pytest.mark.parametrize("argv, said", [
    (["--unknown", "2"], "unknown must be the share of known images that stay known, between "
                         "0 and 1 (e.g. 0.95), or 'off'. Received: unknown=2.0."),
    (["--unknown", "most"], "Received: unknown='most'."),
])
def test_a_bad_unknown_share_is_one_line(trained, tmp_path, capsys, argv, said):
    from convnet.cli import main

    files = convnet.datasets.export(convnet.load(trained.path).own_data(), tmp_path / "i",
                                    split="test", limit=2)
    assert main(["predict", str(trained.path), str(files[0]), *argv]) == 1
    printed = capsys.readouterr().err.strip()
    assert said in printed and len(printed.splitlines()) == 1


def test_an_old_run_has_no_unknown_verdict_and_refuses_one_asked_for(tmp_path, capsys):
    from PIL import Image

    from convnet.cli import main

    image = tmp_path / "one.png"
    Image.new("L", (28, 28)).save(image)
    assert main(["predict", str(FORMAT1), str(image)]) == 0
    assert "unknown (looks like" not in capsys.readouterr().out
    assert main(["predict", str(FORMAT1), str(image), "--unknown", "0.9"]) == 1
    assert "has no unknown detector: it was written before" in capsys.readouterr().err
    with pytest.raises(convnet.ConvnetError, match="has no unknown detector"):
        convnet.load(FORMAT1).predict_files([image], unknown=0.9)  # the library says so too


def test_a_run_with_an_earlier_kind_of_detector_loads_without_one(trained, tmp_path):
    import shutil

    copy = shutil.copytree(trained.path, tmp_path / "run")
    saved = json.loads((copy / "model.json").read_text())
    saved["unknown"]["kind"] = "mahalanobis"  # the first kind: other features, other scale
    (copy / "model.json").write_text(json.dumps(saved))
    run = convnet.load(copy)
    assert run.predictor.detector is None
    with pytest.raises(convnet.ConvnetError, match="has no unknown detector"):
        run.predict_files([], unknown=0.95)


def test_a_damaged_detector_file_is_named(trained, tmp_path):
    import shutil

    copy = shutil.copytree(trained.path, tmp_path / "run")
    (copy / "unknown.safetensors").write_bytes(b"not the detector")
    with pytest.raises(convnet.RunError, match="unknown.safetensors does not match the "
                       "SHA-256 in model.json"):
        convnet.load(copy)


def _noise(folder: Path, count: int, size: int = 28) -> list[Path]:
    """Static: nothing like an X or another shape."""
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(1)
    for index in range(count):
        Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(
            folder / f"{index}.png")
    return sorted(folder.iterdir())


def test_predict_serve_and_the_onnx_file_give_the_same_verdicts(trained, tmp_path, capsys):
    """Known test images and noise: the same probabilities, scores and verdicts from
    `convnet predict`, serve's API (torch and ONNX backends) and onnxruntime alone."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from convnet.cli import main
    from convnet.export.runtime import OnnxPredictor
    from convnet.serve.app import create_app
    from convnet.serve.models import load_served

    run = convnet.load(trained.path)
    files = [*convnet.datasets.export(run.own_data(), tmp_path / "known", split="test",
                                      limit=6), *_noise(tmp_path / "noise", 4)]
    assert main(["predict", str(trained.path), *map(str, files), "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["unknown"] for row in printed} == {True, False}  # both verdicts are tested
    assert main(["export", str(trained.path), "--out", str(tmp_path / "model.onnx")]) == 0
    onnx = OnnxPredictor(tmp_path / "model.onnx", run.classes)
    from_file = [p.to_dict() for p in run.predict_files(files, onnx, unknown=0.95)]
    for backend in ("torch", "onnx"):
        served = load_served([str(trained.path)], backend)
        with TestClient(create_app(served)) as client:
            answers = [client.post(f"/v1/models/{trained.path.name}/predict",
                                   content=Path(f).read_bytes()).json() for f in files]
        for got in (answers, from_file):
            for row, expected in zip(got, printed):
                assert row["unknown"] == expected["unknown"]
                assert row["unknown_score"] == pytest.approx(expected["unknown_score"],
                                                             rel=1e-4, abs=1e-3)
                for name, p in expected["probabilities"].items():
                    assert row["probabilities"][name] == pytest.approx(p, abs=1e-5)


def test_serve_refuses_a_bad_share_and_a_verdict_an_old_run_cannot_give(trained, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from convnet.serve.app import create_app
    from convnet.serve.models import load_served

    served = load_served([str(trained.path), str(FORMAT1)], "torch")
    body = convnet.datasets.export(convnet.load(trained.path).own_data(), tmp_path / "img",
                                   split="test", limit=1)[0].read_bytes()
    with TestClient(create_app(served)) as client:
        url = f"/v1/models/{trained.path.name}/predict"
        assert client.post(url, content=body).json()["unknown_kept"] == 0.95  # the default
        assert "unknown" not in client.post(f"{url}?unknown=off", content=body).json()
        refused = client.post(f"{url}?unknown=2", content=body)
        assert refused.status_code == 422 and "Received: unknown=2.0." in refused.text
        old = f"/v1/models/{FORMAT1.name}/predict"
        assert "unknown" not in client.post(old, content=body).json()
        refused = client.post(f"{old}?unknown=0.9", content=body)
        assert refused.status_code == 422 and "has no unknown detector" in refused.text


def test_large_images_go_through_in_smaller_passes_with_the_same_answers(trained,
                                                                        monkeypatch):
    from convnet import allocator

    run = convnet.load(trained.path)
    images = run.own_data().test.images  # (N, 1, 28, 28)
    whole = run.predictor.scored(images)
    assert run.predictor.step(images) == run.predictor.batch_size  # 28 px: no cap
    assert run.predictor.step(torch.zeros(1, 3, 224, 224, dtype=torch.uint8)) == 16  # CPU
    monkeypatch.setitem(allocator.PIXELS_PER_PASS, "cpu", 3 * 28 * 28)  # 3 images a pass
    assert run.predictor.step(images) == 3
    parts = run.predictor.scored(images)
    assert torch.allclose(parts[0], whole[0], atol=1e-6)
    assert torch.allclose(parts[1], whole[1], rtol=1e-5)
