"""Known or unknown? The candidate scores of `convnet.runs.unknown` on images a run never
saw the like of, against its own test images.

    python bench/unknown.py digits --fashion DIR   # the default digits run; Fashion-MNIST
    python bench/unknown.py catdog                  # a CIFAR cat/dog fine-tune; vehicles

Per candidate: the area under the ROC curve (known test images against unknown ones), the
false-positive rate when 95% of the known test images stay known, and the share of known
test images kept at the threshold set on the validation images (95% of them kept).
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
from convnet.runs.unknown import CANDIDATES, Gaussians, auroc, false_positives, score, threshold

HERE = Path(__file__).resolve().parent
VEHICLES = ("airplane", "automobile", "ship", "truck")


@torch.inference_mode()
def outputs(run, images: torch.Tensor, batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (N, K), embeddings (N, D)) as the run computes them (flips averaged when the
    run uses flip TTA)."""
    network, norm = run.network.eval(), run.record.normalization
    logits, embeddings = [], []
    for start in range(0, len(images), batch):
        x = norm(images[start:start + batch])
        views = [x, x.flip(3)] if run.flip_tta else [x]
        found = torch.stack([network.forward_embedding(v) for v in views]).mean(0)
        embeddings.append(found)
        logits.append(torch.stack([network(v) for v in views]).mean(0))
    return torch.cat(logits), torch.cat(embeddings)


def judge(run, known_test: torch.Tensor, unknown: torch.Tensor) -> list[dict]:
    dataset = run.own_data()
    train, val = run.record.validation.draw(dataset)
    logits_train, emb_train = outputs(run, train.images)
    gaussians = Gaussians.fit(emb_train, train.labels, len(run.classes))
    temperature = run.record.calibration.temperature
    parts = {name: outputs(run, images) for name, images in
             (("val", val.images), ("known", known_test), ("unknown", unknown))}
    rows = []
    for kind in CANDIDATES:
        found = {name: score(kind, logits, embeddings, gaussians, temperature, emb_train)
                 for name, (logits, embeddings) in parts.items()}
        cut = threshold(found["val"], 0.95)
        rows.append({"score": kind, "auroc": auroc(found["known"], found["unknown"]),
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
    from finetune_pairs import PAIRS
    from zoo_data import Entry, materialize

    photos = materialize(PAIRS["catdog"], root)
    vehicles = Path(materialize(Entry("vehicle-photos", "cifar", VEHICLES, 10,
                                      shorter=(120, 400), test_per_class=250), root))
    run = convnet.load(convnet.train(data=photos, init="imagenet",
                                     out=root / "catdog-run").path)
    files = sorted(path for path in (vehicles / "test").rglob("*") if path.is_file())
    unknown = torch.stack([run.image(path) for path in files])
    return "CIFAR cat/dog photo fine-tune against CIFAR vehicle photos", judge(
        run, run.own_data().test.images, unknown)


def main() -> None:
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
