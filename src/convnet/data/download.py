"""Downloading a file we know the SHA-256 of: mirrors, retries, a lock, no partial files.
Each attempt is pooch's HTTP downloader, and the hash is pooch's; the mirrors, the retry
rules and the lock around them are ours.

Invariant: a file is only ever under its final name if its hash matches. Bytes go to a
temporary file beside it, which is renamed once the hash is checked. Two processes asking
for the same file take turns on a lock; the second finds it done.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
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
    import pooch  # on use: pooch imports tqdm.auto, which warns in a notebook without widgets

    return pooch.file_hash(str(path), alg="sha256")


def mirrors_from_env() -> list[str]:
    """Base URLs in ``$CONVNET_MIRRORS`` (comma-separated), tried before the official ones."""
    return [url.strip().rstrip("/") + "/" for url in
            os.environ.get("CONVNET_MIRRORS", "").split(",") if url.strip()]


class _Bar:
    """The progress object pooch's downloader drives (tqdm's few methods), turned into
    our (bytes so far, bytes in all) callback."""

    def __init__(self, progress: Callable[[int, int], None]):
        self.progress, self.total, self.n = progress, -1, 0

    def update(self, count: int) -> None:
        self.n += count
        self.progress(self.n, self.total if self.total else -1)

    def reset(self) -> None:
        self.n = 0

    def close(self) -> None:
        pass


def _cause(error: BaseException, kinds: tuple[type, ...]) -> bool:
    """Whether ``error`` or anything it wraps (causes, contexts, urllib3's ``reason``) is
    one of ``kinds``."""
    seen, stack = set(), [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kinds):
            return True
        stack += [current.__cause__, current.__context__, getattr(current, "reason", None),
                  *(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))]
    return False


def _download_once(url: str, temp: Path, timeout: float,
                   progress: Callable[[int, int], None] | None) -> None:
    """One attempt with pooch's HTTP downloader (requests, streamed to ``temp``); its
    failures sorted into worth retrying or not."""
    import pooch
    import requests
    from urllib3.exceptions import NameResolutionError, ReadTimeoutError

    downloader = pooch.HTTPDownloader(
        progressbar=_Bar(progress) if progress else False, timeout=timeout,
        headers={"User-Agent": f"convnet/{__version__}"})
    try:
        downloader(url, str(temp), None)
    except requests.HTTPError as error:
        code = error.response.status_code if error.response is not None else 0
        if code >= 500 or code == 429:
            raise _Retry(f"HTTP {code}") from None
        raise _NextUrl(f"HTTP {code} {error.response.reason if error.response else ''}"
                       .strip()) from None
    except requests.TooManyRedirects:
        raise _NextUrl("HTTP 302 redirects in a loop") from None
    except Exception as error:  # noqa: BLE001 - sorted below; none escapes as a traceback
        if _cause(error, (NameResolutionError, socket.gaierror)):  # offline: no retry helps
            raise _NextUrl(f"cannot resolve the host ({error.__class__.__name__})") from None
        if _cause(error, (ReadTimeoutError, requests.Timeout, TimeoutError, socket.timeout)):
            raise _Retry(f"no data for {timeout:g} s (read timeout)") from None
        if isinstance(error, requests.ConnectionError) and not _cause(
                error, (requests.exceptions.ChunkedEncodingError,)) and \
                "IncompleteRead" not in repr(error):
            raise _Retry(f"cannot connect ({type(error).__name__})") from None
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
