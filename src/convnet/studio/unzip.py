"""Unpacking an uploaded zip of class folders, refusing what could write outside it.

Refused, before anything is written: a member whose path is absolute, climbs out with
``..`` or names a drive; a symlink; more than `MAX_MEMBERS` members; more than `MAX_TOTAL`
bytes unpacked; a member whose unpacked size passes `MAX_RATIO` times its packed size (a
decompression bomb). The sizes are counted again while unpacking, since a zip's header can
lie. Names are sanitised folder by folder (`safe_name`); everything lands in a staging
folder that the caller renames into place.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
from pathlib import Path, PurePosixPath

MAX_MEMBERS = 50_000
MAX_TOTAL = 2 * 1024**3  # bytes unpacked
MAX_RATIO = 200  # unpacked / packed, per member (images barely compress; bombs do)
CHUNK = 1024 * 1024
SKIPPED = ("__MACOSX", ".DS_Store", "Thumbs.db")  # what archivers add beside the images


class ZipRefused(ValueError):
    """The zip is not one we unpack; the message says why."""


def safe_name(text: str, what: str = "name") -> str:
    """``text`` with every character but letters, digits, space, ``.``, ``_`` and ``-``
    made ``_``, at most 64 characters, not starting with a dot.

    Raises:
        ZipRefused: when nothing usable is left (empty, ``.`` or ``..``).
    """
    cleaned = re.sub(r"[^\w .-]", "_", text.strip(), flags=re.ASCII)[:64].lstrip(".")
    if not cleaned.strip(" _-"):
        raise ZipRefused(f"{what} {text!r} has no letters or digits to keep; use letters, "
                         "digits, '.', '_' or '-'")
    return cleaned


def _parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in path.parts:
        raise ZipRefused(f"member {info.filename!r} points outside the zip's folder")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ZipRefused(f"member {info.filename!r} is a symbolic link; zips of plain "
                         "files only")
    return tuple(part for part in path.parts if part not in ("", "."))


def _members(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ZipRefused(f"{len(infos):,} members, over the limit of {MAX_MEMBERS:,}")
    kept, total = [], 0
    for info in infos:
        parts = _parts(info)
        if info.is_dir() or not parts or any(p in SKIPPED or p.startswith("._") for p in parts):
            continue
        total += info.file_size
        if total > MAX_TOTAL or info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ZipRefused(f"member {info.filename!r} unpacks to {info.file_size:,} bytes "
                             f"from {info.compress_size:,}: past the limits (a ratio of "
                             f"{MAX_RATIO}, {MAX_TOTAL:,} bytes in all)")
        kept.append((info, parts))
    if not kept:
        raise ZipRefused("the zip holds no files")
    return kept


def _unwrapped(members: list[tuple[zipfile.ZipInfo, tuple[str, ...]]]):
    """Drop one folder that wraps everything (``digits/0/a.png`` -> ``0/a.png``)."""
    tops = {parts[0] for _, parts in members}
    if len(tops) == 1 and all(len(parts) > 2 for _, parts in members) and \
            next(iter(tops)).lower() not in ("train", "val", "test"):
        return [(info, parts[1:]) for info, parts in members]
    return members


def unpack(data: bytes, into: Path) -> int:
    """Unpack the zip ``data`` under the new folder ``into``; returns the files written.

    Raises:
        ZipRefused: for anything listed in the module's docstring, or not a zip.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ZipRefused("the file is not a zip archive") from None
    with archive:
        members = _unwrapped(_members(archive))
        into.mkdir(parents=True)
        written = 0
        for info, parts in members:
            target = into.joinpath(*(safe_name(p, "path part") for p in parts))
            if not target.resolve().is_relative_to(into.resolve()):
                raise ZipRefused(f"member {info.filename!r} points outside the zip's folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            written += _copy(archive, info, target)
    return len(members)


def _copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> int:
    """Copy one member, stopping where it unpacks past its declared size."""
    seen = 0
    with archive.open(info) as source, target.open("xb") as sink:
        while chunk := source.read(CHUNK):
            seen += len(chunk)
            if seen > info.file_size:
                raise ZipRefused(f"member {info.filename!r} unpacks past its declared size")
            sink.write(chunk)
    return seen
