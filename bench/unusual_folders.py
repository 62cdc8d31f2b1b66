"""The plan on folders unlike the ones it was tuned on: one class ten times the other,
grayscale photos, grayscale digits as large as photos, large PNG and JPEG files, many
classes of a few images, a handful of images. Each with no options and under a short
``--time``, in a fresh cache, timed from process start to exit.

    python bench/unusual_folders.py                       # every folder, both runs
    python bench/unusual_folders.py --only imbalanced --runs "" "--time 10s"
    git worktree add /tmp/old COMMIT && python bench/unusual_folders.py --checkout /tmp/old

Built from CIFAR-10 and MNIST under ``--root`` (bench/zoo_data.py makes the photos:
upscaled, random aspect, JPEG or PNG, some stored sideways). The test images are
balanced, so on ``imbalanced`` the balanced accuracy is the accuracy. What each checks:
the head alone weighing the classes as the epochs do (``imbalanced``), ImageNet weighed
for grayscale photos, where it wins (``gray-photos``) and loses (``gray-digits``), the
budget where decoding takes most of it (``large-files``), and that nothing breaks on
``ten-small`` and ``tiny``. ``--checkout`` runs another checkout's convnet (its src/ put
first on the path) on the same folders: the rows before a change.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from benchdata import add_checkout, append_row, checkout, cpu_flags, machine
from finetune_pairs import run_once
from zoo_data import Entry, materialize

HERE = Path(__file__).resolve().parent
FOLDERS = {
    # automobiles and trucks; `_derive` keeps 30 of the trucks' 300 training images
    "imbalanced": Entry("unusual-imbalanced", "cifar", ("automobile", "truck"), 300,
                        shorter=(120, 400), test_per_class=100),
    # cats and dogs; `_derive` turns them grayscale
    "gray-photos": Entry("unusual-gray", "cifar", ("cat", "dog"), 150, shorter=(120, 400),
                         test_per_class=100),
    "gray-digits": Entry("unusual-digits96", "mnist", side=96, per_class=60),
    "large-files": Entry("unusual-large", "cifar", ("deer", "frog", "horse"), 150,
                         shorter=(800, 1400), test_per_class=50),
    "ten-small": Entry("unusual-ten-small", "cifar", (), 15, shorter=(120, 400),
                       test_per_class=30),
    "tiny": Entry("unusual-tiny", "cifar", ("airplane", "ship"), 6, shorter=(120, 400),
                  test_per_class=20),
}
KEPT_MINORITY = 30  # of the imbalanced folder's smaller class


def _derive(name: str, built: Path) -> Path:
    """The folder ``name`` asks for, made once from the zoo's ``built`` one."""
    if name not in ("imbalanced", "gray-photos"):
        return built
    target = built.with_name(built.name + "-derived")
    if (target / ".built").exists():
        return target
    partial = built.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(built, partial)
    if name == "imbalanced":
        for path in sorted((partial / "train" / "truck").iterdir())[KEPT_MINORITY:]:
            path.unlink()
    else:
        for path in partial.rglob("*.*"):
            if path.suffix in (".jpg", ".png"):
                with Image.open(path) as image:
                    gray = ImageOps.exif_transpose(image).convert("L")
                gray.save(path)
    (partial / ".built").touch()
    partial.rename(target)
    return target


def folder(name: str, root: Path) -> str:
    """The folder of `FOLDERS` ``name``, built under ``root`` (and derived) if needed."""
    return str(_derive(name, Path(materialize(FOLDERS[name], root))))


def _one(data: str, flags: list[str], work: Path) -> dict:
    shutil.rmtree(work, ignore_errors=True)  # an empty cache, as a new user's first command
    row = run_once(data, flags, work, work / "cache")
    if "error" in row:
        return row
    meta = json.loads((work / "run" / "model.json").read_text())
    return {**row, "balanced": meta["metrics"]["test"]["balanced_accuracy"],
            "side": row.pop("image_size")[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=list(FOLDERS), choices=list(FOLDERS))
    parser.add_argument("--runs", nargs="+", default=["", "--time 10s"], metavar="FLAGS",
                        help="each run's flags as one quoted string ('' for no options)")
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "zoo")
    add_checkout(parser)
    parser.add_argument("--results", type=Path, default=HERE / "unusual_folders.jsonl")
    args = parser.parse_args()
    env, code = checkout(args.checkout)
    os.environ.update(env)  # `run_once` starts convnet with this process's environment
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}; convnet: {code}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="convnet-unusual-"))
    print("| folder | flags | wall s | test accuracy | balanced | start | network | side | "
          "epochs |\n|---|---|---|---|---|---|---|---|---|", flush=True)
    for name in args.only:
        data = folder(name, args.root)
        for flags in args.runs:
            row = _one(data, flags.split(), work / name)
            append_row(args.results, {"folder": name, "options": flags, "code": code, **row})
            if "error" in row:
                print(f"| {name} | {flags or 'none'} | failed: {row['error']} |", flush=True)
                continue
            print(f"| {name} | {flags or 'none'} | {row['seconds']:.1f} | "
                  f"{row['accuracy']:.2%} | {row['balanced']:.2%} | "
                  f"{row['init'] or 'scratch'} | {row['arch'].removeprefix('efficientnet-')} "
                  f"| {row['side']} | {row['epochs']} |", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
