"""Fine-tuning speed: convnet against a plain PyTorch loop of the same network, in one run;
the cost of the frozen (head-only) phase; `predict imagenet` images/s, torch and onnxruntime.

    python bench/finetune_speed.py                 # 128 px, batch 32, 2 rounds
    python bench/finetune_speed.py --side 160 --rounds 5
    python3 bench/finetune_speed.py --device cuda --only-finetune   # the GPU pass

Both trainers fine-tune EfficientNet-Lite0 from its ImageNet weights on the same 400 CIFAR
cat/dog photos (decoded once at --side), batch 32, AdamW, for one epoch after a warm-up
epoch that is not counted; rounds alternate the two, so a slow spell hits both. The plain
loop is what a tutorial reader writes: a shuffled DataLoader over a TensorDataset, fp32,
NCHW, normalise per batch, model.train(). convnet's images/s is its own epoch timing
(metrics.csv, training steps only). Needs the pretrained extra.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import convnet  # noqa: E402
from benchdata import cpu_flags, machine  # noqa: E402
from convnet.data.preprocess import Preprocess  # noqa: E402
from convnet.training.finetune import Start, load_into  # noqa: E402
from convnet.training.pretrained import (  # noqa: E402
    IMAGENET_NORMALIZATION,  # noqa: E402
    SOURCES,
    imagenet_weights,
)
from zoo_data import Entry, materialize  # noqa: E402

DATA = Entry("catdog-speed", "cifar", ("cat", "dog"), 200, shorter=(120, 400),
             test_per_class=50)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_loop(images: torch.Tensor, labels: torch.Tensor, side: int, batch: int,
               device: str = "cpu") -> float:
    """Images/s of the second of two epochs of a textbook fine-tuning loop."""
    network = convnet.build("efficientnet-lite0", (side, side, 3), 2)
    start = Start("imagenet", "efficientnet-lite0", imagenet_weights("efficientnet-lite0"),
                  None, "")
    load_into(network, start)
    network.to(device)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels),
                                         batch_size=batch, shuffle=True, drop_last=True)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-4)
    network.train()
    seen, seconds = 0, 0.0
    for epoch in range(2):
        _sync(device)
        began = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            x = (x.float() - 127) / 128
            loss = F.cross_entropy(network(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(y) if epoch else 0
        _sync(device)
        seconds = time.perf_counter() - began
    return seen / seconds


def ours(data: str, side: int, batch: int, out: Path, device: str = "cpu"
         ) -> tuple[float, dict]:
    result = convnet.train(data=data, init="imagenet", image_size=side, batch_size=batch,
                           epochs=2, augment="none", flip=False, ema=0.0, freeze_epochs=0,
                           val_split=0.0, out=out, device=device)
    second = convnet.runs.format.read_metrics(result.path)[1]
    return float(second["images_per_s"]), result.run.record.speed


def frozen_phase(data: str, side: int) -> dict:
    """Seconds of the head-only phase, features computed (a cold cache) and read again."""
    dataset = convnet.datasets.load(data, preprocess=Preprocess(side, side, 3))
    network = convnet.build("efficientnet-lite0", (side, side, 3), 2)
    network = network.to(memory_format=torch.channels_last)
    from convnet.training.finetune import features, fit_head

    identity = f"bench-{time.time()}"  # a key no earlier run used: a cold cache
    timings = {}
    for name in ("cold", "cached"):
        began = time.perf_counter()
        found = features(network, dataset.train.images, IMAGENET_NORMALIZATION, identity,
                         torch.device("cpu"))
        timings[f"features {name}"] = time.perf_counter() - began
    began = time.perf_counter()
    fit_head(network, dataset.train, found, 30, 0.1, 0)
    timings["30 head epochs"] = time.perf_counter() - began
    timings["images"] = len(dataset.train)
    return timings


def predict_speed(photos: list[Path]) -> dict:
    """Images/s of `predict imagenet` (decode included), torch and onnxruntime."""
    run = convnet.load("imagenet")
    from convnet.export import OnnxPredictor, export_onnx

    model = run.path / "model.onnx"
    if not model.is_file():
        export_onnx(run.path)
    speeds = {}
    onnx_side = OnnxPredictor(model, run.classes)
    for name, predictor in (("torch", None), ("onnxruntime", onnx_side)):
        run.predict_files(photos[:8], predictor)  # warm-up
        began = time.perf_counter()
        run.predict_files(photos, predictor)
        speeds[name] = len(photos) / (time.perf_counter() - began)
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the GPU pass)")
    parser.add_argument("--only-finetune", action="store_true",
                        help="Only the fine-tuning rows (no frozen phase, no predict).")
    parser.add_argument("--only-predict", action="store_true",
                        help="Only the predict imagenet images/s.")
    args = parser.parse_args()
    root = Path(tempfile.gettempdir()) / "convnet-finetune-bench"
    data = materialize(DATA, root)
    print(f"{machine()}; CPU flags: {cpu_flags()}; "
          f"weights {SOURCES['efficientnet-lite0'].package}")
    if not args.only_predict:
        finetuning(data, args)
    if args.only_finetune:
        return
    photos = sorted(p for p in Path(data).rglob("*") if p.suffix in (".jpg", ".png"))[:200]
    print("predict imagenet img/s:", {k: round(v, 1) for k, v in
                                      predict_speed(photos).items()})


def finetuning(data: str, args: argparse.Namespace) -> None:
    dataset = convnet.datasets.load(data, preprocess=Preprocess(args.side, args.side, 3))
    images, labels = dataset.train.images, dataset.train.labels
    plain, mine = [], []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.rounds):
            plain.append(plain_loop(images, labels, args.side, args.batch, args.device))
            speed, record = ours(data, args.side, args.batch, Path(folder) / f"r{index}",
                                 args.device)
            mine.append(speed)
            print(f"round {index + 1}: plain {plain[-1]:.1f} img/s, convnet {mine[-1]:.1f} "
                  f"img/s ({record.get('precision')}, channels_last "
                  f"{record.get('channels_last')})", flush=True)
    ratio = statistics.median(mine) / statistics.median(plain)
    print(f"| {args.side} px, batch {args.batch} | {statistics.median(plain):.1f} | "
          f"{statistics.median(mine):.1f} | {ratio:.2f}× |")
    if not args.only_finetune:
        print("frozen phase:", {k: round(v, 2) for k, v in
                                frozen_phase(data, args.side).items()})


if __name__ == "__main__":
    main()
