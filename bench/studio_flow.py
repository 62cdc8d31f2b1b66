"""The studio's API flow, timed: a zip of two digit classes in, a model out.

    python bench/studio_flow.py

Starts `convnet studio` on 127.0.0.1 (a fresh workspace and cache), uploads a zip of 200
training PNGs each of the digits 3 and 7, starts a job with no options, and while it
trains asks GET /v1/jobs/ID and GET /v1/datasets in turn every 0.1 s (at most 5,000
requests), noting each answer's time. When the job is finished, the model predicts every
3 and 7 of the shared digits' test split (held out: never in the zip). Appends one JSON
row to --results.
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
from pathlib import Path

import httpx
from PIL import Image

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "studio")]
from studio_helpers import digits_zip  # noqa: E402

import convnet  # noqa: E402
from benchdata import append_row  # noqa: E402
from conftest import free_port  # noqa: E402

DIGITS, PER_CLASS, MAX_REQUESTS = (3, 7), 200, 5000


def _held_out() -> list[tuple[str, bytes]]:
    test = convnet.datasets.load("digits").test
    found = []
    for row in ((test.labels == 3) | (test.labels == 7)).nonzero().flatten().tolist():
        buffer = io.BytesIO()
        Image.fromarray(test.images[row, 0].numpy()).save(buffer, "PNG")
        found.append((str(int(test.labels[row])), buffer.getvalue()))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).with_name("studio_flow.jsonl"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="convnet-studio-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CONVNET_CACHE": str(work / "cache")}
    server = subprocess.Popen([sys.executable, "-m", "convnet", "studio", str(work / "ws"),
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(600):
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            made = client.post("/v1/datasets", data={"name": "threes-sevens"}, files={
                "file": ("d.zip", digits_zip(PER_CLASS, DIGITS), "application/zip")})
            assert made.status_code == 201, made.text
            started = time.perf_counter()
            id = client.post("/v1/jobs", json={"dataset": "threes-sevens"}).json()["id"]
            times, state = [], "queued"
            while state not in ("finished", "failed", "cancelled") and \
                    len(times) < MAX_REQUESTS:
                for path in (f"/v1/jobs/{id}", "/v1/datasets"):
                    began = time.perf_counter()
                    answer = client.get(path).json()
                    times.append(time.perf_counter() - began)
                    if isinstance(answer, dict):
                        state = answer["state"]
                time.sleep(0.1)
            seconds = time.perf_counter() - started
            job = client.get(f"/v1/jobs/{id}").json()
            assert job["state"] == "finished", job
            held = _held_out()
            right = 0
            for begin in range(0, len(held), 64):
                part = held[begin:begin + 64]
                files = [("f", (f"{i}.png", data, "image/png")) for i, (_, data) in
                         enumerate(part)]
                answers = client.post(f"/v1/models/{id}/predict", files=files).json()
                right += sum(a["top"][0]["class"] == label
                             for a, (label, _) in zip(answers, part))
    finally:
        server.terminate()
        server.wait(30)
    row = {"images": 2 * PER_CLASS, "job_seconds": round(seconds, 1),
           "epochs": job["epochs"], "plan": job["plan"],
           "held_out": len(held), "held_out_accuracy": round(right / len(held), 4),
           "requests_during_job": len(times),
           "p50_ms": round(1000 * statistics.median(times), 1),
           "p95_ms": round(1000 * statistics.quantiles(times, n=20)[-1], 1),
           "max_ms": round(1000 * max(times), 1)}
    print(json.dumps(row, indent=1))
    append_row(args.results, row)


if __name__ == "__main__":
    main()
