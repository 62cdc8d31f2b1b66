"""Shared fixtures: one tiny trained run that many tests read (never modify it)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import convnet

TINY_DATA = "x-or-not-x:size=12,train=40,test=10"
TINY_ARCH = "conv4k3-relu-maxpool2-fc8-relu-fc"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for servers and process groups
    the tests start)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    convnet.train(data=TINY_DATA, arch=TINY_ARCH, epochs=2, batch_size=16, out=out)
    return out
