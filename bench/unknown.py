"""Known or unknown? The candidate scores of `convnet.runs.unknown` on images a run never
saw the like of, against its own test images.

    python bench/unknown.py digits --fashion DIR   # the default digits run; Fashion-MNIST
    python bench/unknown.py catdog                  # a CIFAR cat/dog fine-tune; vehicles

Per candidate: the area under the ROC curve (known test images against unknown ones), the
false-positive rate when 95% of the known test images stay known, and the share of known
test images kept, and of unknown ones flagged, at the threshold set on the validation
images as a run sets it (`convnet.runs.unknown.threshold`: at least 95% kept, with 90%
confidence); last, the run's own detector as `convnet predict` uses it.
``--fashion``: a folder with Fashion-MNIST's official IDX files (no download here).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

import convnet
from benchdata import append_row, cpu_flags, machine
from convnet.runs.unknown import Gaussians, auroc, false_positives, score, threshold, unit

HERE = Path(__file__).resolve().parent
VEHICLES = ("airplane", "automobile", "ship", "truck")


@torch.inference_mode()
def outputs(run, images: torch.Tensor, batch: int = 64
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits (N, K), the classifier's input (N, D), and the same without the last
    activation (N, D)) as the run computes them (flips averaged with flip TTA)."""
    network, norm = run.network.eval(), run.record.normalization
    logits, after, before = [], [], []
    for start in range(0, len(images), batch):
        # channels-last batches of 64, as a run's Predictor takes them (batches of 512 photos
        # at 224 px made this bench take 40 minutes)
        x = norm(images[start:start + batch]).contiguous(memory_format=torch.channels_last)
        views = [x, x.flip(3)] if run.flip_tta else [x]
        found = [network.forward_embeddings(v) for v in views]
        after.append(torch.stack([e for e, _ in found]).mean(0))
        before.append(torch.stack([raw for _, raw in found]).mean(0))
        # the classifier on its input is the rest of the forward pass
        logits.append(torch.stack([network.classifier(e) for e, _ in found]).mean(0))
    return torch.cat(logits), torch.cat(after), torch.cat(before)


# (row name, candidate, features): "after" is the classifier's input, "before" the same
# without its last activation, "unit" that scaled to length 1 (what a run's detector uses)
VARIANTS = [("msp", "msp", "after"), ("energy", "energy", "after"),
            ("mahalanobis (classifier input)", "mahalanobis", "after"),
            ("knn (classifier input)", "knn", "after"),
            ("mahalanobis, before the last activation", "mahalanobis", "before"),
            ("knn, before the last activation", "knn", "before"),
            ("mahalanobis, before the last activation, unit length", "mahalanobis", "unit")]


def judge(run, known_test: torch.Tensor, unknown: torch.Tensor) -> list[dict]:
    dataset = run.own_data()
    train, val = run.record.validation.draw(dataset)
    train_logits, *train_features = outputs(run, train.images[:2000])
    labels = train.labels[:2000]
    features = {**dict(zip(("after", "before"), train_features)),
                "unit": unit(train_features[1])}
    gaussians = {name: Gaussians.fit(f, labels, len(run.classes)) for name, f in features.items()}
    temperature = run.record.calibration.temperature
    parts = {name: (logits, {"after": after, "before": before, "unit": unit(before)})
             for name, (logits, after, before) in
             ((name, outputs(run, images)) for name, images in
              (("val", val.images), ("known", known_test), ("unknown", unknown)))}
    rows = []
    for row, kind, which in VARIANTS:
        found = {name: score(kind, logits, feats[which], gaussians[which], temperature,
                             features[which]) for name, (logits, feats) in parts.items()}
        cut = threshold(found["val"], 0.95)
        rows.append({"score": row, "auroc": auroc(found["known"], found["unknown"]),
                     "fpr_at_95": false_positives(found["known"], found["unknown"], 0.95),
                     "kept_known": float((found["known"] <= cut).double().mean()),
                     "unknown_flagged": float((found["unknown"] > cut).double().mean())})
    if run.predictor.detector is not None:  # the detector the run saved, as predict uses it
        found = {name: run.predictor.scored(images)[1] for name, images in
                 (("known", known_test), ("unknown", unknown))}
        cut = run.predictor.unknown_cut(0.95)
        rows.append({"score": "the run's own detector (predict's verdict)",
                     "auroc": auroc(found["known"], found["unknown"]),
                     "fpr_at_95": false_positives(found["known"], found["unknown"], 0.95),
                     "kept_known": float((found["known"] <= cut).double().mean()),
                     "unknown_flagged": float((found["unknown"] > cut).double().mean())})
    return rows


def digits(fashion: Path, root: Path) -> tuple[str, list[dict]]:
    run = convnet.load(convnet.train(data="digits", out=root / "digits").path)
    unknown = convnet.datasets.load(str(fashion)).test.images[:2000]
    return "digits run against Fashion-MNIST", judge(run, run.own_data().test.images, unknown)


def catdog(root: Path) -> tuple[str, list[dict]]:
    """The cat/dog photo folder of bench/finetune_pairs.py (CIFAR upscaled to photo sizes),
    fine-tuned from ImageNet with the plan; vehicles made the same way are the unknown."""
    from dataclasses import replace

    from finetune_pairs import PAIRS
    from zoo_data import Entry, materialize

    # all 1,000 CIFAR test images per class: "known kept" read on 400 would spread by ±1
    # point from sampling alone
    photos = materialize(replace(PAIRS["catdog"], name="catdog-photos-test2000",
                                 test_per_class=1000), root)
    vehicles = Path(materialize(Entry("vehicle-photos", "cifar", VEHICLES, 10,
                                      shorter=(120, 400), test_per_class=250), root))
    run = convnet.load(convnet.train(data=photos, init="imagenet",
                                     out=root / "catdog-run").path)
    files = sorted(path for path in (vehicles / "test").rglob("*") if path.is_file())
    unknown = torch.stack([run.image(path) for path in files])
    return "CIFAR cat/dog photo fine-tune against CIFAR vehicle photos", judge(
        run, run.own_data().test.images, unknown)


def main() -> None:
    from convnet.allocator import keep_freed_memory

    keep_freed_memory()  # as the CLI does: large batches of photos without page faults
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("digits", "catdog"))
    parser.add_argument("--fashion", type=Path, help="Fashion-MNIST IDX folder (digits)")
    parser.add_argument("--results", type=Path, default=HERE / "unknown.jsonl")
    args = parser.parse_args()
    if args.case == "digits" and args.fashion is None:
        parser.error("digits needs --fashion DIR (Fashion-MNIST's IDX files)")
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="convnet-unknown-"))
    what, rows = digits(args.fashion, root) if args.case == "digits" else catdog(root)
    print(f"\n{what}\n")
    print("| score | AUROC | FPR at 95% known kept | known test kept (val threshold) "
          "| unknown flagged |\n|---|---|---|---|---|")
    for row in rows:
        append_row(args.results, {"case": args.case, **row})
        print(f"| {row['score']} | {row['auroc']:.4f} | {row['fpr_at_95']:.2%} | "
              f"{row['kept_known']:.2%} | {row['unknown_flagged']:.2%} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
