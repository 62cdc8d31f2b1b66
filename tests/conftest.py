"""Shared fixtures: one tiny trained run that many tests read (never modify it)."""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import convnet

TINY_DATA = "x-or-not-x:size=12,train=40,test=10"
TINY_ARCH = "conv4k3-relu-maxpool2-fc8-relu-fc"


def embedded_images(html: str) -> list:
    """Every PNG a page embeds as a data URI, decoded (PIL images)."""
    from PIL import Image

    return [Image.open(io.BytesIO(base64.b64decode(data)))
            for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for servers and process groups
    the tests start)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(app, stop_seconds: float = 10) -> Iterator[str]:
    """``app`` (ASGI) served by uvicorn in a thread on 127.0.0.1; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=stop_seconds)


@pytest.fixture(scope="session", autouse=True)
def fresh_cache(tmp_path_factory) -> Path:
    """Every session starts from an empty convnet cache, as CI's fresh machine does: what
    an earlier checkout decoded or computed into the user's cache is never read (and the
    processes the tests start inherit the same folder)."""
    folder = tmp_path_factory.mktemp("convnet-cache")
    os.environ["CONVNET_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    convnet.train(data=TINY_DATA, arch=TINY_ARCH, epochs=2, batch_size=16, out=out)
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A small run with enough validation images for both its temperature and its
    "unknown" detector (the calibration and unknown tests share it)."""
    out = tmp_path_factory.mktemp("calibrated") / "run"
    return convnet.train(data="x-or-not-x:train=60,test=20", arch="conv4k3-relu-maxpool2-fc",
                         epochs=2, val_split=0.3, out=out)
