"""The studio's API flow, timed: a zip of classes in, a model out.

    python bench/studio_flow.py            # two digit classes
    python bench/studio_flow.py --photos   # six classes of photos (the "six" folder)

``--checkout TREE`` runs another checkout's studio (its src/ first on the path). Starts
`convnet studio` on 127.0.0.1 (a fresh workspace and cache), uploads a zip of 200
training PNGs each of the digits 3 and 7 (with --photos: the 246 training photos of
bench/time_to_accuracy.py's ``six`` folder, CIFAR photos upscaled), starts a job with no
options, and while it trains asks GET /v1/jobs/ID and GET /v1/datasets in turn every 0.1 s
(at most 5,000 requests), noting each answer's time, and when the job says a model so far
answers (its ``early`` field: a fine-tune's new head, then each better epoch) how long
that took and what it was, and predicts a held-out image with it. When the job is
finished, the model predicts every held-out image: each 3 and 7 of the shared digits' test
split, or the folder's 300 test photos (never in the zip). Appends one JSON row to
--results.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
from PIL import Image

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "studio"), str(Path(__file__).resolve().parent)]
from studio_helpers import digits_zip  # noqa: E402

import convnet  # noqa: E402
from benchdata import add_checkout, append_row, checkout  # noqa: E402
from conftest import free_port  # noqa: E402

DIGITS, PER_CLASS, MAX_REQUESTS = (3, 7), 200, 5000


def _photos() -> tuple[bytes, list[tuple[str, bytes]]]:
    """A zip of the ``six`` folder's training photos, and its test photos (label, bytes)."""
    from time_to_accuracy import FOLDERS
    from zoo_data import materialize

    folder = Path(materialize(FOLDERS["six"], Path(tempfile.gettempdir()) / "zoo"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((folder / "train").glob("*/*")):
            archive.write(path, f"{path.parent.name}/{path.name}")
    held = [(path.parent.name, path.read_bytes())
            for path in sorted((folder / "test").glob("*/*"))]
    return buffer.getvalue(), held


def _held_out() -> list[tuple[str, bytes]]:
    test = convnet.datasets.load("digits").test
    found = []
    for row in ((test.labels == 3) | (test.labels == 7)).nonzero().flatten().tolist():
        buffer = io.BytesIO()
        Image.fromarray(test.images[row, 0].numpy()).save(buffer, "PNG")
        found.append((str(int(test.labels[row])), buffer.getvalue()))
    return found


def _follow(client: httpx.Client, id: str, probe: tuple[str, bytes]) -> dict:
    """Poll the job (and the datasets) until it ends: the answers' times, and the first
    model so far: when the job said so, what it was, and its answer to ``probe``."""
    started, times, state, first = time.perf_counter(), [], "queued", None
    while state not in ("finished", "failed", "cancelled") and len(times) < MAX_REQUESTS:
        for path in (f"/v1/jobs/{id}", "/v1/datasets"):
            began = time.perf_counter()
            answer = client.get(path).json()
            times.append(time.perf_counter() - began)
            if isinstance(answer, dict):
                state = answer["state"]
                if first is None and answer.get("early") and state != "finished":
                    first = _first_answer(client, id, answer, probe, started)
        time.sleep(0.1)
    return {"seconds": time.perf_counter() - started, "times": times, "first": first}


def _first_answer(client: httpx.Client, id: str, status: dict, probe: tuple[str, bytes],
                  started: float) -> dict:
    said = time.perf_counter() - started
    answer = client.post(f"/v1/models/{id}/predict",
                         files=[("f", ("probe.png", probe[1], "image/png"))]).json()
    return {"first_answer_s": round(said, 1), "first_answer": status["early"]["after"],
            "first_val_acc": status["early"]["val_acc"],
            "first_predict_s": round(time.perf_counter() - started, 1),
            "first_predict_ok": isinstance(answer, list) and "top" in answer[0]}


def _accuracy(client: httpx.Client, id: str, held: list[tuple[str, bytes]]) -> float:
    right = 0
    for begin in range(0, len(held), 32):
        part = held[begin:begin + 32]
        files = [("f", (f"{i}.png", data, "image/png")) for i, (_, data) in enumerate(part)]
        answers = client.post(f"/v1/models/{id}/predict", files=files).json()
        right += sum(a["top"][0]["class"] == label for a, (label, _) in zip(answers, part))
    return right / len(held)


def _job(url: str, data: bytes, held: list[tuple[str, bytes]]) -> dict:
    """Upload ``data``, train a job with no options, follow it, score it on ``held``."""
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(600):
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        made = client.post("/v1/datasets", data={"name": "project"},
                           files={"file": ("d.zip", data, "application/zip")})
        assert made.status_code == 201, made.text
        id = client.post("/v1/jobs", json={"dataset": "project"}).json()["id"]
        followed = _follow(client, id, held[0])
        job = client.get(f"/v1/jobs/{id}").json()
        assert job["state"] == "finished", job
        return {**followed, "job": job, "accuracy": _accuracy(client, id, held)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", action="store_true", help="six classes of photos")
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).with_name("studio_flow.jsonl"))
    add_checkout(parser)
    args = parser.parse_args()
    checkout_env, code = checkout(args.checkout)
    data, held = _photos() if args.photos else \
        (digits_zip(PER_CLASS, DIGITS), _held_out())
    work = Path(tempfile.mkdtemp(prefix="convnet-studio-bench-"))
    port = free_port()
    env = {**os.environ, **checkout_env, "CONVNET_CACHE": str(work / "cache")}
    server = subprocess.Popen([sys.executable, "-m", "convnet", "studio", str(work / "ws"),
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
    try:
        done = _job(f"http://127.0.0.1:{port}", data, held)
    finally:
        server.terminate()
        server.wait(30)
    times, job = done["times"], done["job"]
    row = {"data": "six photos" if args.photos else "digits 3 and 7", "code": code,
           "images": len(zipfile.ZipFile(io.BytesIO(data)).namelist()),
           "job_seconds": round(done["seconds"], 1), **(done["first"] or {}),
           "epochs": job["epochs"], "plan": job["plan"],
           "held_out": len(held), "held_out_accuracy": round(done["accuracy"], 4),
           "requests_during_job": len(times),
           "p50_ms": round(1000 * statistics.median(times), 1),
           "p95_ms": round(1000 * statistics.quantiles(times, n=20)[-1], 1),
           "max_ms": round(1000 * max(times), 1)}
    print(json.dumps(row, indent=1))
    append_row(args.results, row)


if __name__ == "__main__":
    main()
