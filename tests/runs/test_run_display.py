"""How a run, a training result, an evaluation and predictions show in a notebook: the
figures they hold, as they hold them, and their pictures embedded."""

from __future__ import annotations

import re

import torch

import convnet
from conftest import embedded_images
from convnet.runs.predictor import Prediction


def test_a_training_result_shows_its_scores_curves_and_test_evaluation(trained):
    html = trained._repr_html_()
    assert 'class="convnet convnet-run"' in html and 'class="convnet convnet-evaluation"' in html
    assert f"test accuracy:</span> {trained.test.accuracy:.2%}" in html
    assert len(embedded_images(html)) == 2  # the curves and the confusion matrix
    assert repr(trained).startswith(f"TrainResult({trained.path}: 2 epochs")


def test_an_evaluation_shows_each_class_as_torch_counts_it(trained):
    evaluation = trained.test
    html = evaluation._repr_html_()
    confusion = evaluation.confusion.double()  # rows: true class
    for index, name in enumerate(evaluation.classes):
        recall = confusion[index, index] / confusion[index].sum()
        precision = confusion[index, index] / confusion[:, index].sum()
        row = re.search(rf"<tr><td[^>]*>{name}</td>(.*?)</tr>", html).group(1)
        cells = re.findall(r">([^<]+)</td>", row)
        assert cells == [f"{precision:.3f}", f"{recall:.3f}",
                         f"{2 * precision * recall / (precision + recall):.3f}",
                         str(int(confusion[index].sum()))]
    calibration = evaluation.honesty
    assert f"{calibration['before']['ece']:.4f}" in html
    assert f"{calibration['after']['ece']:.4f}" in html
    assert repr(evaluation).startswith(f"Evaluation({evaluation.count:,} images, 2 classes")


def test_a_loaded_run_shows_what_it_is_and_its_curves(trained):
    run = convnet.load(trained.path)
    html = run._repr_html_()
    assert f"{run.record.params:,} parameters" in html and "x-or-not-x" in html
    assert len(embedded_images(html)) == 2  # the curves, and the confusion model.json keeps
    assert run.record.metrics.test["confusion"] == trained.test.confusion.tolist()
    assert repr(run) == (f"Run({trained.path}: {run.record.arch}, 2 classes, input 28×28×1, "
                         f"test accuracy {trained.test.accuracy:.2%})")


def test_predictions_of_images_show_each_image_beside_its_probabilities(trained):
    run = convnet.load(trained.path)
    images = convnet.datasets.load("x-or-not-x:train=4,test=4").test.images[:3]
    noise = torch.randint(0, 256, (1, 1, 28, 28), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    answers = run.predict_images(torch.cat([images, noise]), unknown=0.95)
    html = answers._repr_html_()
    assert html.count('class="convnet convnet-prediction"') == 4
    decoded = embedded_images(html)
    assert [image.size for image in decoded] == [(112, 112)] * 4
    assert (torch.tensor(list(decoded[0].getdata())).reshape(112, 112)[::4, ::4]
            == images[0, 0]).all()  # the image itself, enlarged
    for answer in answers:
        name, p = answer.top(1)[0]
        assert f">{p:.2f}</td>" in answer._repr_html_()
        assert ("unknown: unlike the images" in answer._repr_html_()) == answer.unknown


def test_a_prediction_of_a_file_shows_the_file_and_an_error_shows_the_reason(tmp_path):
    from PIL import Image

    Image.new("RGB", (400, 300), (200, 30, 30)).save(tmp_path / "red.png")
    shown = Prediction(str(tmp_path / "red.png"), {"red": 0.9, "blue": 0.1})._repr_html_()
    assert [image.size for image in embedded_images(shown)] == [(128, 96)]  # a thumbnail
    failed = Prediction("gone.jpg", error="cannot be read <here>")._repr_html_()
    assert "cannot be read &lt;here&gt;" in failed and not embedded_images(failed)


def test_a_photo_shows_upright_as_its_exif_orientation_says(tmp_path):
    from PIL import Image

    picture = Image.new("RGB", (300, 100), (10, 200, 10))
    exif = picture.getexif()
    exif[0x0112] = 6  # stored sideways: shown turned 90°
    picture.save(tmp_path / "side.jpg", exif=exif)
    shown = Prediction(str(tmp_path / "side.jpg"), {"green": 1.0})._repr_html_()
    assert [image.size for image in embedded_images(shown)] == [(43, 128)]
