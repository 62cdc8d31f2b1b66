"""The downloader against a scripted HTTP server on 127.0.0.1: no test touches the internet."""

from __future__ import annotations

import gzip
import hashlib
import io
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from convnet import data as datasets
from convnet.data import cifar, standard
from convnet.data.download import Remote, fetch
from convnet.errors import ConvnetError

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Server:
    """Routes path -> list of behaviours, one used per request (the last one repeats)."""

    def __init__(self):
        self.routes: dict[str, list] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                server.hits[self.path] += 1
                plan = server.routes.get(self.path, [("status", 404)])
                kind, arg = plan[min(server.hits[self.path], len(plan)) - 1]
                getattr(server, f"_{kind}")(self, arg)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @staticmethod
    def _status(handler, code):
        handler.send_response(code)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    @staticmethod
    def _body(handler, data):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _short(handler, data):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[: len(data) // 2])
        handler.close_connection = True

    @staticmethod
    def _drip(handler, data):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[:10])
        handler.wfile.flush()
        time.sleep(1.5)

    @staticmethod
    def _redirect(handler, target):
        handler.send_response(302)
        handler.send_header("Location", target)
        handler.send_header("Content-Length", "0")
        handler.end_headers()


@pytest.fixture
def server():
    running = Server()
    yield running
    running.httpd.shutdown()


def _fetch(server, tmp_path, *paths, **options):
    remote = Remote("file.bin", SHA, tuple(server.url + p for p in paths))
    return fetch(remote, tmp_path / "cache", backoff=0.01, **options)


def test_503_twice_then_ok_succeeds_after_retries(server, tmp_path):
    server.routes["/f"] = [("status", 503), ("status", 503), ("body", PAYLOAD)]
    path = _fetch(server, tmp_path, "/f")
    assert path.read_bytes() == PAYLOAD and server.hits["/f"] == 3


def test_404_names_the_url_and_the_offline_fix(server, tmp_path):
    with pytest.raises(ConvnetError) as error:
        _fetch(server, tmp_path, "/missing")
    message = str(error.value)
    assert f"{server.url}/missing: HTTP 404" in message and "--data" in message
    assert server.hits["/missing"] == 1  # a 404 is not retried
    assert not (tmp_path / "cache" / "file.bin").exists()


def test_html_page_fails_the_checksum_and_the_next_mirror_is_used(server, tmp_path):
    server.routes["/a"] = [("body", b"<html><body>Please log in</body></html>")]
    server.routes["/b"] = [("body", PAYLOAD)]
    assert _fetch(server, tmp_path, "/a", "/b").read_bytes() == PAYLOAD
    assert server.hits["/a"] == 1


def test_short_body_is_retried_and_never_left_under_the_final_name(server, tmp_path):
    server.routes["/f"] = [("short", PAYLOAD)]
    with pytest.raises(ConvnetError, match="short body|connection broke"):
        _fetch(server, tmp_path, "/f", retries=2)
    assert server.hits["/f"] == 3
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["file.bin.lock"]


def test_slow_drip_past_the_read_timeout_fails(server, tmp_path):
    server.routes["/f"] = [("drip", PAYLOAD)]
    with pytest.raises(ConvnetError, match="timeout|no data"):
        _fetch(server, tmp_path, "/f", retries=0, timeout=0.3)


def test_redirect_loop_fails_with_the_url(server, tmp_path):
    server.routes["/loop"] = [("redirect", "/loop")]
    with pytest.raises(ConvnetError, match="/loop: HTTP 30"):
        _fetch(server, tmp_path, "/loop")


def test_corrupt_file_in_the_cache_is_downloaded_again(server, tmp_path):
    server.routes["/f"] = [("body", PAYLOAD)]
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "file.bin").write_bytes(b"garbage")
    assert _fetch(server, tmp_path, "/f").read_bytes() == PAYLOAD
    assert _fetch(server, tmp_path, "/f").read_bytes() == PAYLOAD  # verified copy reused
    assert server.hits["/f"] == 1


def test_unreachable_host_gives_one_line_with_url_and_fix(tmp_path):
    remote = Remote("file.bin", SHA, ("http://127.0.0.1:9/file.bin",))  # discard port
    with pytest.raises(ConvnetError) as error:
        fetch(remote, tmp_path, retries=0)
    message = str(error.value)
    assert "\n" not in message and "http://127.0.0.1:9/file.bin" in message
    assert "put it in a folder with the set's other files and pass --data" in message


def test_two_processes_download_once(server, tmp_path):
    server.routes["/f"] = [("body", PAYLOAD)]
    code = ("import sys; from pathlib import Path; from convnet.data.download import Remote, fetch;"
            f"fetch(Remote('file.bin', {SHA!r}, ({server.url + '/f'!r},)), Path(sys.argv[1]))")
    workers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "cache")])
               for _ in range(2)]
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    assert server.hits["/f"] == 1
    assert (tmp_path / "cache" / "file.bin").read_bytes() == PAYLOAD


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_mnist_by_name_downloads_once_from_a_mirror(server, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    files = {"train-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (20, 28, 28))),
             "train-labels-idx1-ubyte.gz": _idx(np.arange(20) % 10),
             "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (10, 28, 28))),
             "t10k-labels-idx1-ubyte.gz": _idx(np.arange(10) % 10)}
    for name, data in files.items():
        server.routes[f"/mirror/{name}"] = [("body", data)]
    monkeypatch.setitem(standard.STANDARD, "mnist", [
        Remote(name, hashlib.sha256(data).hexdigest(), ("http://127.0.0.1:9/" + name,))
        for name, data in files.items()])
    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CONVNET_MIRRORS", server.url + "/mirror/")
    first = datasets.load("mnist")
    second = datasets.load("mnist")
    assert len(first.train) == 20 and len(first.test) == 10 and first.classes[9] == "9"
    assert first.fingerprint() == second.fingerprint()
    assert sum(server.hits.values()) == 4  # the second load read the cache


def _cifar_records(count: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count).astype(np.uint8)
    images = rng.integers(0, 256, (count, 3, 32, 32)).astype(np.uint8)
    raw = b"".join(bytes([label]) + image.tobytes() for label, image in zip(labels, images))
    return raw, images, labels


def _tar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_cifar_binary_archive_is_parsed_without_extracting(tmp_path):
    members, expected = {}, {}
    for index, name in enumerate([*cifar.TRAIN_FILES, cifar.TEST_FILE]):
        raw, images, labels = _cifar_records(3, index)
        members[f"{cifar.INNER}/{name}"] = raw
        expected[name] = (images, labels)
    _tar(tmp_path / cifar.ARCHIVE, members)
    dataset = datasets.load(tmp_path)
    assert dataset.classes == cifar.CLASSES and dataset.input_shape == (32, 32, 3)
    assert len(dataset.train) == 15 and len(dataset.test) == 3
    images, labels = expected[cifar.TEST_FILE]
    assert np.array_equal(dataset.test.images.numpy(), images)
    assert np.array_equal(dataset.test.labels.numpy(), labels)


@pytest.mark.parametrize("bad_name", ["../escape.bin", "/etc/evil.bin"])
def test_cifar_archive_with_paths_outside_is_refused(tmp_path, bad_name):
    raw, _, _ = _cifar_records(1, 0)
    _tar(tmp_path / cifar.ARCHIVE, {bad_name: raw, **{
        f"{cifar.INNER}/{n}": raw for n in [*cifar.TRAIN_FILES, cifar.TEST_FILE]}})
    with pytest.raises(ConvnetError, match="points outside the archive"):
        datasets.load(tmp_path)
    assert not (tmp_path.parent / "escape.bin").exists()


def test_truncated_cifar_batch_is_named(tmp_path):
    raw, _, _ = _cifar_records(2, 0)
    for name in [*cifar.TRAIN_FILES, cifar.TEST_FILE]:
        (tmp_path / name).write_bytes(raw[:-5] if name == "data_batch_3.bin" else raw)
    with pytest.raises(ConvnetError, match="truncated"):
        datasets.load(tmp_path)


def test_unknown_host_is_not_retried(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # offline, without asking a resolver
    remote = Remote("file.bin", SHA, ("http://mirror.example/file.bin",))
    started = time.perf_counter()
    with pytest.raises(ConvnetError, match="cannot resolve the host"):
        fetch(remote, tmp_path, retries=3, backoff=5.0)
    assert time.perf_counter() - started < 5.0  # no back-off sleeps: offline fails at once
