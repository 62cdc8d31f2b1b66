"""Load on `convnet serve` and on a hand-written handler (bench/naive_server.py), on
loopback only, bounded in requests and seconds per level.

    python bench/serve_load.py RUN --levels 1,8,32,128,512 --requests 2000 --seconds 20

Each level sends POST /v1/models/NAME/predict with one digit PNG as the body from that many
concurrent clients until `--requests` are answered or `--seconds` pass. Reported:
requests/s, p50/p95/p99 latency of all answers, and counts of 2xx, 503, other statuses and
connection errors. After the 512 level, one request must be answered normally within a
second, and the server's resident memory is read before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import subprocess
import sys
import time
from pathlib import Path

import httpx
from PIL import Image

import convnet
from benchdata import cpu_flags, machine

HOST = "127.0.0.1"


def _image(run_path: str) -> bytes:
    test = convnet.datasets.load("digits").test
    buffer = io.BytesIO()
    Image.fromarray(test.images[0, 0].numpy(), "L").save(buffer, format="PNG")
    return buffer.getvalue()


def _start(command: list[str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}/docs", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server did not start: {process.stderr.read().decode()[-2000:]}")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _Connection:
    """One keep-alive HTTP/1.1 connection, written by hand: a Python client built on a full
    HTTP library costs more CPU per request than the servers it measures, on the same two
    cores, and would measure itself."""

    def __init__(self, port: int, request: bytes):
        self.port, self.request = port, request
        self.reader = self.writer = None

    async def send(self) -> int:
        """One request; returns the status. Reconnects when the server closed."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
        await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _level(port: int, path: str, body: bytes, concurrency: int, requests: int,
                 seconds: float):
    latencies, statuses, errors, kinds = [], {}, 0, {}
    sent = 0
    deadline = time.monotonic() + seconds
    request = (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: image/png\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def client() -> None:
        nonlocal sent, errors
        connection = _Connection(port, request)
        while sent < requests and time.monotonic() < deadline:
            sent += 1
            began = time.perf_counter()
            try:
                status = await asyncio.wait_for(connection.send(), 30)
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(time.perf_counter() - began)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
                errors += 1
                kinds[type(error).__name__] = kinds.get(type(error).__name__, 0) + 1
                await connection.close()
        await connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 \
            if latencies else float("nan")
    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    busy = statuses.get(503, 0)
    other = sum(statuses.values()) - ok - busy
    if kinds:
        print(f"  connection errors by kind: {kinds}")
    return ok / elapsed, pick(0.5), pick(0.95), pick(0.99), ok, busy, other, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--levels", default="1,8,32,128,512")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    print(f"machine: {machine()}\ncpu flags: {cpu_flags()}")
    body, name = _image(args.run), Path(args.run).name
    here = Path(__file__).resolve().parent
    servers = {
        "convnet serve": ([sys.executable, "-m", "convnet", "serve", args.run, "--port",
                           "8701"], 8701),
        "naive handler": ([sys.executable, str(here / "naive_server.py"), args.run, "8702"],
                          8702),
    }
    print("\n| server | concurrency | requests/s | p50 ms | p95 ms | p99 ms | 2xx | 503 | "
          "other | connection errors |\n|---|---|---|---|---|---|---|---|---|---|")
    for label, (command, port) in servers.items():
        process = _start(command, port)
        path = f"/v1/models/{name}/predict"
        url = f"http://{HOST}:{port}{path}"
        try:
            before = _rss_mb(process.pid)
            for level in map(int, args.levels.split(",")):
                rate, p50, p95, p99, ok, busy, other, errors = asyncio.run(
                    _level(port, path, body, level, args.requests, args.seconds))
                print(f"| {label} | {level} | {rate:,.0f} | {p50:.1f} | {p95:.1f} | {p99:.1f} | "
                      f"{ok} | {busy} | {other} | {errors} |", flush=True)
            began = time.perf_counter()
            after_load = httpx.post(url, content=body, timeout=5).status_code
            print(f"  {label}: next request after the load: {after_load} in "
                  f"{time.perf_counter() - began:.3f}s; memory {before:.0f} MB before, "
                  f"{_rss_mb(process.pid):.0f} MB after", flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
