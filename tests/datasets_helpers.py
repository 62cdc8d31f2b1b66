"""Generated image folders for the data tests: good files, and one of each bad kind."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def picture(kind: str, seed: int, size: int = 16) -> Image.Image:
    """A cross for ``cat``, a filled square for ``dog``: easy to tell apart."""
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
    middle = size // 2
    if kind == "cat":
        array[middle - 1 : middle + 1, :] = 230
        array[:, middle - 1 : middle + 1] = 230
    else:
        array[3:-3, 3:-3] = 230
    return Image.fromarray(array, "RGB")


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def bomb_png() -> bytes:
    """A valid 1×1 PNG whose header claims 30000×30000 pixels."""
    data = bytearray(png_bytes(Image.new("L", (1, 1))))
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", 30000, 30000)
    data[16:29] = ihdr[4:]
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(data)


def good_class(folder: Path, kind: str, count: int, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(start, start + count):
        path = folder / f"{kind}_{index}.png"
        picture(kind, index).save(path)
        paths.append(path)
    return paths


def bad_folder(root: Path) -> dict[str, str]:
    """A cat/dog folder with one of every bad file; returns {relative path: reason word}."""
    good_class(root / "cat", "cat", 12)
    good_class(root / "dog", "dog", 12)
    cat, dog = root / "cat", root / "dog"
    whole = jpeg_bytes(picture("cat", 99, 64))
    (cat / "cut10.jpg").write_bytes(whole[: len(whole) // 10])
    (cat / "cut90.jpg").write_bytes(whole[: len(whole) * 9 // 10])
    png = png_bytes(picture("dog", 98, 64))
    (dog / "cut.png").write_bytes(png[: len(png) // 2])
    (dog / "empty.jpg").write_bytes(b"")
    (dog / "notes.jpg").write_text("this is text, not a picture")
    (cat / "paper.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n")
    (cat / "bomb.png").write_bytes(bomb_png())
    os.symlink("loop_b.jpg", cat / "loop_a.jpg")
    os.symlink("loop_a.jpg", cat / "loop_b.jpg")
    os.mkfifo(dog / "pipe.jpg")
    # Valid oddities that must be read, not reported:
    (dog / "really_png.jpg").write_bytes(png_bytes(picture("dog", 97)))
    picture("cat", 96).convert("CMYK").save(cat / "cmyk.jpg")
    Image.new("I;16", (16, 16), 3000).save(cat / "deep.png")
    Image.new("1", (1, 1), 1).save(dog / "one pixel.png")
    (dog / os.fsdecode(b"caf\xe9.png")).write_bytes(png_bytes(picture("dog", 95)))
    # Hidden things and an empty class: never classes, never files.
    (root / ".ipynb_checkpoints" / "x").mkdir(parents=True)
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "cat.png").write_bytes(png_bytes(picture("cat", 1)))
    (cat / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "bird").mkdir()
    (root / "bird" / ".hidden.png").write_bytes(png_bytes(picture("cat", 2)))
    return {"cat/cut10.jpg": "damaged", "cat/cut90.jpg": "damaged", "dog/cut.png": "damaged",
            "dog/empty.jpg": "empty file", "dog/notes.jpg": "not an image",
            "cat/paper.pdf": "not an image", "cat/bomb.png": "decompression bomb",
            "cat/loop_a.jpg": "symlink loop", "cat/loop_b.jpg": "symlink loop",
            "dog/pipe.jpg": "not a regular file"}


def load_and_sum(path: str, queue) -> None:
    """In a child process: load a folder dataset and report its training pixels' sum."""
    from convnet.data.folders import load_folder

    queue.put(load_folder(Path(path)).train.images.sum().item())


def train_into(out: str, options: dict, queue) -> None:
    """In a child process: train into ``out``; report the folder used, or the error."""
    import convnet

    try:
        queue.put(str(convnet.train(out=out, **options).path))
    except convnet.ConvnetError as error:
        queue.put(f"error: {error}")


def sharded_evaluation(rank: int, ranks: int, run_path: str, count: int, port: int,
                       out: str) -> None:
    """In a spawned process: join a gloo group on 127.0.0.1 and score ``count`` of the run's
    test images with `evaluate_sharded`; rank 0 writes the result as JSON to ``out``."""
    import json
    import os

    import torch
    import torch.distributed as dist

    import convnet
    from convnet.runs.predictor import evaluate_sharded

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=ranks)
    try:
        run = convnet.load(run_path)
        split, _ = run.labelled()
        part = split.subset(torch.arange(count))
        found = evaluate_sharded(run.predictor, part, rank, ranks)
        if rank == 0:
            Path(out).write_text(json.dumps({"loss": found.loss,
                                             "confusion": found.confusion.tolist()}))
    finally:
        dist.destroy_process_group()
