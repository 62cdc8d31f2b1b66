"""Downloading a file we know the SHA-256 of: mirrors, retries, a lock, no partial files.

Invariant: a file is only ever under its final name if its hash matches. Bytes go to a
temporary file beside it, which is renamed once the hash is checked. Two processes asking
for the same file take turns on a lock; the second finds it done.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from convnet._version import __version__
from convnet.errors import ConvnetError

log = logging.getLogger("convnet")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Remote:
    """A file known by name and hash, and where it can be fetched (official URL first)."""

    name: str
    sha256: str
    urls: tuple[str, ...]


class _Retry(Exception):
    """This attempt failed in a way worth trying again (5xx, timeout, short body)."""


class _NextUrl(Exception):
    """This URL will not work (404, wrong content); move on to the next one."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def mirrors_from_env() -> list[str]:
    """Base URLs in ``$CONVNET_MIRRORS`` (comma-separated), tried before the official ones."""
    return [url.strip().rstrip("/") + "/" for url in
            os.environ.get("CONVNET_MIRRORS", "").split(",") if url.strip()]


def _download_once(url: str, temp: Path, timeout: float,
                   progress: Callable[[int, int], None] | None) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": f"convnet/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, \
                temp.open("wb") as out:
            expected = int(response.headers.get("Content-Length") or -1)
            received = 0
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                received += len(block)
                if progress:
                    progress(received, expected)
            if 0 <= expected != received:
                raise _Retry(f"short body: {received:,} of {expected:,} bytes")
            out.flush()
            os.fsync(out.fileno())
    except urllib.error.HTTPError as error:
        if error.code >= 500 or error.code == 429:
            raise _Retry(f"HTTP {error.code}") from None
        raise _NextUrl(f"HTTP {error.code} {error.reason}") from None
    except TimeoutError:
        raise _Retry(f"no data for {timeout:g} s (read timeout)") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, socket.gaierror):  # no DNS: offline, retrying will not help
            raise _NextUrl(f"cannot resolve the host ({reason})") from None
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise _Retry(f"no answer in {timeout:g} s") from None
        raise _Retry(f"cannot connect ({reason})") from None
    except (OSError, http.client.HTTPException) as error:
        raise _Retry(f"connection broke ({type(error).__name__}: {error})") from None


def _try_url(url: str, remote: Remote, temp: Path, retries: int, timeout: float,
             backoff: float, progress: Callable[[int, int], None] | None) -> str | None:
    """Download ``url`` into ``temp`` with retries; None on success, else why it failed."""
    reason = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            _download_once(url, temp, timeout, progress)
        except _Retry as error:
            reason = str(error)
            log.info("%s: %s (attempt %d of %d)", url, reason, attempt + 1, retries + 1)
            continue
        except _NextUrl as error:
            return str(error)
        if sha256_of(temp) == remote.sha256:
            return None
        return "SHA-256 does not match (not the expected file: an error page or a changed file)"
    return reason


def fetch(remote: Remote, folder: Path, *, retries: int = 3, timeout: float = 30.0,
          backoff: float = 1.0, progress: Callable[[int, int], None] | None = None) -> Path:
    """``folder/remote.name``, downloaded and verified unless a verified copy is there.

    Raises:
        ConvnetError: when no URL gives the file; the message names the URL and how to
            place the file by hand.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / remote.name
    with FileLock(str(target) + ".lock"):
        if target.is_file():
            if sha256_of(target) == remote.sha256:
                return target
            log.warning("%s does not match its SHA-256; downloading it again", target)
            target.unlink()
        urls = [base + remote.name for base in mirrors_from_env()] + list(remote.urls)
        failures = []
        for url in urls:
            handle, name = tempfile.mkstemp(dir=folder, prefix=f".{remote.name}.",
                                            suffix=".part")
            os.close(handle)
            temp = Path(name)
            try:
                reason = _try_url(url, remote, temp, retries, timeout, backoff, progress)
                if reason is None:
                    os.replace(temp, target)
                    return target
                failures.append(f"{url}: {reason}")
            finally:
                temp.unlink(missing_ok=True)
    raise ConvnetError(
        f"Could not download {remote.name} ({'; '.join(failures)}). If this machine is "
        f"offline, fetch {remote.urls[0]} elsewhere (SHA-256 {remote.sha256}), put it in a "
        f"folder with the set's other files and pass --data with that folder (or copy them "
        f"into {folder}).")
