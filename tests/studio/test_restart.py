"""A studio killed mid-job: started again, it lists the dataset and finishes the job from
its checkpoint (a real server process, killed with SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
from studio_helpers import digits_zip  # noqa: E402

from conftest import TINY_ARCH, free_port  # noqa: E402


def _start(folder, port: int, env) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "convnet", "studio", str(folder),
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError(server.stderr.read().decode()[-2000:])


def _job(url: str, id: str) -> dict:
    return httpx.get(f"{url}/v1/jobs/{id}", timeout=5).json()


@pytest.mark.skipif(sys.platform != "linux", reason="the worker's parent-death signal")
def test_a_studio_killed_mid_job_finishes_it_from_its_checkpoint_when_started_again(
        tmp_path):
    env = {**os.environ, "CONVNET_CACHE": str(tmp_path / "cache")}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _start(tmp_path / "ws", port, env)
    try:
        made = httpx.post(f"{url}/v1/datasets", data={"name": "pair"}, timeout=30,
                          files={"file": ("pair.zip", digits_zip(150), "application/zip")})
        assert made.status_code == 201
        id = httpx.post(f"{url}/v1/jobs", timeout=5, json={"dataset": "pair", "options": {
            "arch": TINY_ARCH, "epochs": 25, "batch_size": 8, "seed": 1}}).json()["id"]
        deadline = time.monotonic() + 90
        while _job(url, id)["epoch"] < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        killed_at = _job(url, id)
        assert killed_at["state"] == "running" and killed_at["epoch"] >= 3, killed_at
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)
    server = _start(tmp_path / "ws", port, env)
    try:
        assert [d["name"] for d in httpx.get(f"{url}/v1/datasets", timeout=5).json()] == \
            ["pair"]
        deadline = time.monotonic() + 120
        done = _job(url, id)
        while done["state"] != "finished" and time.monotonic() < deadline:
            assert done["state"] in ("queued", "running"), done
            time.sleep(0.2)
            done = _job(url, id)
        assert done["state"] == "finished"
        # every epoch once: those before the kill from the run's metrics, then the rest
        assert [row["epoch"] for row in done["metrics"]] == list(range(1, 26))
        (note,) = [n for n in done["notes"] if n.startswith("resumed")]
        # from the checkpoint of the last whole epoch, not from the start
        assert int(note.split()[-2]) >= killed_at["epoch"] - 1 >= 2
        log = (tmp_path / "ws" / "jobs" / f"{id}.log").read_text()
        assert "Traceback" not in log
        assert httpx.get(f"{url}/v1/models", timeout=30).json()[0]["name"] == id
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
