"""Folder and CSV datasets: layouts, every bad file, the decode cache, training on them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import convnet
from convnet import data as datasets
from convnet.cli import main
from convnet.data.folders import load_folder
from convnet.data.preprocess import Preprocess, decode
from convnet.errors import ConvnetError, DataError
from datasets_helpers import bad_folder, good_class, picture

ARCH = "conv4k3-relu-maxpool2-gap-fc"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path / "cache"))


def test_every_bad_file_is_reported_by_path_and_reason(tmp_path):
    expected = bad_folder(tmp_path / "pets")
    report = load_folder(tmp_path / "pets").report
    found = {os.path.relpath(p.path, tmp_path / "pets"): p.reason for p in report.problems}
    assert set(found) == set(expected)
    for path, word in expected.items():
        assert word in found[path] or (path == "cat/cut10.jpg" and "not an image" in
                                       found[path]), (path, found[path])
    assert report.classes == ["cat", "dog"]  # bird holds only a hidden file: left out...
    assert report.empty_classes == ["bird"]  # ...and reported
    assert report.counts["train"] == [12 + 2, 12 + 3]  # CMYK and I;16; PNG-as-jpg, 1×1, é


def test_an_empty_class_folder_is_reported_and_left_out(tmp_path):
    good_class(tmp_path / "d" / "cat", "cat", 3)
    good_class(tmp_path / "d" / "dog", "dog", 3)
    (tmp_path / "d" / "bird").mkdir()
    dataset = load_folder(tmp_path / "d")
    assert dataset.classes == ["cat", "dog"]
    assert dataset.report.empty_classes == ["bird"]
    assert any("bird" in line for line in dataset.report.blocking())


def test_a_single_class_is_refused(tmp_path):
    good_class(tmp_path / "d" / "cat", "cat", 3)
    with pytest.raises(ConvnetError, match="needs at least 2 classes.*found cat"):
        load_folder(tmp_path / "d")


def test_folder_symlink_loop_is_reported_not_followed_forever(tmp_path):
    good_class(tmp_path / "d" / "cat", "cat", 3)
    good_class(tmp_path / "d" / "dog", "dog", 3)
    os.symlink("..", tmp_path / "d" / "dog" / "up")
    report = load_folder(tmp_path / "d").report
    assert any("symlink loop" in p.reason for p in report.problems)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_reported(tmp_path):
    good_class(tmp_path / "d" / "cat", "cat", 3)
    good_class(tmp_path / "d" / "dog", "dog", 3)
    locked = tmp_path / "d" / "dog" / "locked.png"
    picture("dog", 5).save(locked)
    locked.chmod(0)
    report = load_folder(tmp_path / "d").report
    assert [p.reason for p in report.problems] == ["cannot be read (permission denied)"]


def test_train_val_test_folders_give_their_own_splits(tmp_path):
    for split, count in (("train", 6), ("val", 2), ("test", 3)):
        good_class(tmp_path / "d" / split / "cat", "cat", count)
        good_class(tmp_path / "d" / split / "dog", "dog", count, start=100)
    dataset = load_folder(tmp_path / "d")
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (12, 4, 6)
    assert dataset.report.counts == {"train": [6, 6], "val": [2, 2], "test": [3, 3]}


def _digit_pngs(folder: Path, digit: int, count: int, skip: int = 0) -> list[Path]:
    """Real, distinct handwritten digits saved as PNGs."""
    split = convnet.datasets.load("digits").train
    rows = (split.labels == digit).nonzero().flatten()[skip : skip + count].tolist()
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{digit}-{row}.png" for row in rows]
    for row, path in zip(rows, paths):
        Image.fromarray(split.images[row, 0].numpy()).save(path)
    return paths


def test_duplicates_across_splits_are_flagged(tmp_path):
    cats = _digit_pngs(tmp_path / "d" / "train" / "cat", 3, 3)
    _digit_pngs(tmp_path / "d" / "train" / "dog", 7, 3)
    _digit_pngs(tmp_path / "d" / "test" / "dog", 7, 1, skip=3)
    (tmp_path / "d" / "test" / "cat").mkdir()
    shutil.copy(cats[0], tmp_path / "d" / "test" / "cat" / "leak.png")
    shutil.copy(cats[1], tmp_path / "d" / "train" / "cat" / "again.png")
    Image.open(cats[2]).resize((20, 20)).save(tmp_path / "d" / "test" / "cat" / "near.jpg",
                                              quality=80)
    assert [g.kind for g in load_folder(tmp_path / "d").report.duplicates] == \
        ["exact", "exact"]  # near copies only when asked for (check-data, dedupe)
    report = load_folder(tmp_path / "d", near=True).report
    found = {(g.kind, g.splits, Path(g.paths[-1]).name): g for g in report.duplicates}
    assert set(found) == {("exact", ("train", "train"), "again.png"),
                          ("exact", ("train", "test"), "leak.png"),
                          ("near", ("train", "test"), "near.jpg")}
    assert found["exact", ("train", "test"), "leak.png"].similarity == 1.0
    assert 0.98 <= found["near", ("train", "test"), "near.jpg"].similarity < 1.0
    assert sorted(Path(g.paths[-1]).name for g in report.leaks) == ["leak.png", "near.jpg"]


def test_a_finder_adds_its_pairs_once_and_later_loads_read_them(tmp_path):
    rng = np.random.default_rng(0)
    for where, count in (("train/cat", 3), ("train/dog", 3), ("test/cat", 1)):
        (tmp_path / "d" / where).mkdir(parents=True)
        for index in range(count):  # noise: nothing alike for the perceptual search
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(
                tmp_path / "d" / where / f"{index}.png")
    calls = []

    def find(fetch, count, same):  # pairs the first cat with the test cat
        calls.append(count)
        assert fetch([0, count - 1]).shape == (2, 3, 16, 16)
        return [(0, count - 1, 0.93)]

    report = load_folder(tmp_path / "d", near=True, finders=[("test-v1", find)]).report
    (group,) = report.duplicates
    assert (group.kind, group.splits, group.similarity) == ("near", ("train", "test"), 0.93)
    assert group.paths[1].endswith("test/cat/0.png")
    again = load_folder(tmp_path / "d", near=True, finders=[("test-v1", find)]).report
    plain = load_folder(tmp_path / "d").report  # no search asked for: the kept pairs
    assert calls == [7] and again.duplicates == plain.duplicates == report.duplicates


def test_class_in_test_but_not_train_is_an_error(tmp_path):
    good_class(tmp_path / "d" / "train" / "cat", "cat", 2)
    good_class(tmp_path / "d" / "train" / "dog", "dog", 2)
    good_class(tmp_path / "d" / "test" / "fox", "cat", 1)
    with pytest.raises(ConvnetError, match="class folder.*fox.*train/ does not have"):
        load_folder(tmp_path / "d")


def test_csv_of_paths_and_labels(tmp_path):
    paths = good_class(tmp_path / "imgs", "cat", 3) + good_class(tmp_path / "imgs", "dog", 3)
    rows = ["path,label"] + [f"imgs/{p.name},{p.stem.split('_')[0]}" for p in paths]
    rows[-1] += ",test"
    rows[1] += ",train"
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    dataset = datasets.load(tmp_path / "labels.csv")
    assert dataset.classes == ["cat", "dog"]
    assert (len(dataset.train), len(dataset.test)) == (5, 1)
    assert dataset.test.labels.tolist() == [1]


def test_bad_csv_names_the_row(tmp_path):
    (tmp_path / "labels.csv").write_text("a.png,cat\nb.png\n")
    with pytest.raises(ConvnetError, match="Row 2 has another shape"):
        datasets.load(tmp_path / "labels.csv")


def test_image_size_channels_and_pixels_match_the_decoder(tmp_path):
    good_class(tmp_path / "d" / "cat", "cat", 3)
    good_class(tmp_path / "d" / "dog", "dog", 3)
    dataset = load_folder(tmp_path / "d")
    assert dataset.input_shape == (16, 16, 3)  # all files 16×16 RGB: kept as they are
    small = load_folder(tmp_path / "d", image_size=8, resize="pad")
    assert small.input_shape == (8, 8, 3)
    first = sorted((tmp_path / "d" / "cat").iterdir())[0]
    reference = decode(first, Preprocess(8, 8, 3, "pad"))  # (H, W, C)
    assert torch.equal(small.train.images[0], torch.from_numpy(reference).permute(2, 0, 1))


def test_grayscale_folders_get_one_channel(tmp_path):
    for kind in ("cat", "dog"):
        (tmp_path / "d" / kind).mkdir(parents=True)
        for index in range(2):
            picture(kind, index).convert("L").save(tmp_path / "d" / kind / f"{index}.png")
    assert load_folder(tmp_path / "d").input_shape == (16, 16, 1)


def test_cache_is_used_then_invalidated_when_a_file_changes(tmp_path):
    paths = good_class(tmp_path / "d" / "cat", "cat", 3) + \
        good_class(tmp_path / "d" / "dog", "dog", 3)
    first = load_folder(tmp_path / "d")
    second = load_folder(tmp_path / "d")
    assert (first.report.cached, second.report.cached) == (False, True)
    assert torch.equal(first.train.images, second.train.images)
    picture("dog", 42).save(paths[0])  # new content (and size/mtime) under the same name
    os.utime(paths[0], ns=(1, 1))
    third = load_folder(tmp_path / "d")
    assert third.report.cached is False
    assert not torch.equal(third.train.images, first.train.images)
    assert len(list((tmp_path / "cache" / "decoded").glob("*.partial"))) == 0


def test_bad_folder_trains_to_completion_and_records_what_it_skipped(tmp_path):
    expected = bad_folder(tmp_path / "pets")
    result = convnet.train(data=str(tmp_path / "pets"), arch=ARCH, epochs=2, batch_size=8,
                           out=tmp_path / "run")
    skipped = result.run.meta["data"]["skipped"]
    assert len(skipped) == len(expected)
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert len(report["skipped"]) == len(expected) and report["classes"] == ["cat", "dog"]
    assert result.run.meta["preprocess"] == {"height": 16, "width": 16, "channels": 3,
                                             "resize": "crop"}


def test_strict_refuses_to_start_and_writes_nothing(tmp_path):
    bad_folder(tmp_path / "pets")
    with pytest.raises(DataError, match="strict=True: the data scan found 11 problem"):
        convnet.train(data=str(tmp_path / "pets"), arch=ARCH, epochs=1, strict=True,
                      out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_cli_check_data_and_strict_training_print_each_bad_file(tmp_path, capsys):
    expected = bad_folder(tmp_path / "pets")
    assert main(["check-data", str(tmp_path / "pets")]) == 0
    shown = capsys.readouterr().out
    for path in expected:
        assert Path(path).name in shown
    code = main(["train", "--data", str(tmp_path / "pets"), "--arch", ARCH, "--strict",
                 "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 1 and "--strict" in captured.err and "Traceback" not in captured.err
    for path in expected:
        assert Path(path).name in captured.out
    assert main(["check-data", str(tmp_path / "pets"), "--strict"]) == 1


def test_predict_uses_the_saved_preprocessing_and_class_order(tmp_path):
    good_class(tmp_path / "d" / "zebra", "cat", 8)
    good_class(tmp_path / "d" / "ant", "dog", 8)
    result = convnet.train(data=str(tmp_path / "d"), arch=ARCH, epochs=2, batch_size=4,
                           image_size=12, resize="pad", out=tmp_path / "run")
    run = convnet.load(tmp_path / "run")
    assert run.classes == ["ant", "zebra"] and run.preprocess.resize == "pad"
    big = tmp_path / "big.png"
    picture("cat", 3, size=40).resize((40, 30)).save(big)
    [prediction] = run.predict_files([big])
    expected = run.predict(torch.from_numpy(decode(big, run.preprocess)).permute(2, 0, 1))
    assert np.allclose(list(prediction.probabilities.values()),
                       sorted(expected[0].tolist(), reverse=True), atol=1e-6)
    assert result.run.meta["input_shape"] == [12, 12, 3]


def test_imbalanced_folder_is_warned_about_and_weighted(tmp_path):
    good_class(tmp_path / "d" / "cat", "cat", 20)
    good_class(tmp_path / "d" / "dog", "dog", 4)
    dataset = load_folder(tmp_path / "d")
    assert dataset.report.imbalance == 5.0
    assert any("imbalanced" in note for note in dataset.report.warnings())
    result = convnet.train(data=str(tmp_path / "d"), arch=ARCH, epochs=1, batch_size=4,
                           out=tmp_path / "run")
    assert result.run.meta["balance"] == "weights"
    sampled = convnet.train(data=str(tmp_path / "d"), arch=ARCH, epochs=1, batch_size=4,
                            balance="sampler", out=tmp_path / "run2")
    assert sampled.run.meta["balance"] == "sampler"


def test_broken_symlink_and_missing_csv_file_are_named(tmp_path):
    good_class(tmp_path / "d" / "cat", "cat", 2)
    good_class(tmp_path / "d" / "dog", "dog", 2)
    os.symlink("gone.png", tmp_path / "d" / "dog" / "link.png")
    report = load_folder(tmp_path / "d").report
    assert [(Path(p.path).name, p.reason) for p in report.problems] == [
        ("link.png", "broken symlink (target does not exist)")]
    (tmp_path / "labels.csv").write_text("d/cat/cat_0.png,cat\nd/dog/dog_0.png,dog\nnope.png,dog\n")
    report = load_folder(tmp_path / "labels.csv").report
    assert [(Path(p.path).name, p.reason) for p in report.problems] == [
        ("nope.png", "no such file")]


def test_load_folder_on_a_missing_path_is_one_clear_error(tmp_path):
    with pytest.raises(ConvnetError, match="does not exist. Give a folder with one sub-folder"):
        load_folder(tmp_path / "no-such-photos")


def test_a_folders_decoding_time_is_the_mean_of_a_spread_sample(monkeypatch, tmp_path):
    """`seconds_per_file` times `decode_file` on a sample spread over the files: in a
    folder of two kinds of file it is their mean (the folder's cost is a sum), and one
    slow file (a cold disk, a first import) is left out."""
    import time as clock

    from convnet.data import scan

    paths = [tmp_path / f"{index}.{'png' if index % 2 else 'jpg'}" for index in range(100)]
    seen: list[Path] = []

    def decode(path, prep):
        seen.append(path)
        clock.sleep(0.3 if path == paths[0] else 0.03 if path.suffix == ".png" else 0.002)
    monkeypatch.setattr(scan, "decode_file", decode)
    per_file = scan.seconds_per_file(paths, Preprocess(8, 8, 3), sample=10)
    # files 0, 10, ... 90 are all .jpg with an even step: take a step that mixes them
    assert seen == paths[::10] and 0.002 <= per_file < 0.01
    seen.clear()
    mixed = scan.seconds_per_file(paths[1:], Preprocess(8, 8, 3), sample=11)
    pngs = sum(path.suffix == ".png" for path in seen[:11])
    times = sorted(0.03 if path.suffix == ".png" else 0.002 for path in seen[:11])[:-1]
    assert 3 <= pngs <= 8, seen  # both kinds in the sample
    assert mixed == pytest.approx(sum(times) / len(times), rel=0.3)
