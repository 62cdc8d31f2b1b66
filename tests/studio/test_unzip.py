"""Unpacking uploaded zips: what climbs out, links or explodes is refused before any write."""

from __future__ import annotations

import io
import zipfile

import pytest
from studio_helpers import digits_zip, evil_zip

from convnet.studio.unzip import ZipRefused, safe_name, unpack


def _everything(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(("kind", "words"), [
    ("slip", "points outside"), ("absolute", "points outside"),
    ("symlink", "symbolic link"), ("bomb", "past the limits"),
])
def test_a_hostile_zip_is_refused_and_nothing_is_written(tmp_path, kind, words):
    with pytest.raises(ZipRefused, match=words):
        unpack(evil_zip(kind), tmp_path / "box" / "into")
    assert _everything(tmp_path) == []


def test_a_zip_whose_sizes_lie_is_stopped_while_it_unpacks(tmp_path):
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a/1.png", b"1234")
        archive.writestr("b/1.png", b"5678")
    raw = big.getvalue()
    # the central directory says 2 bytes for a/1.png; the data holds 4
    central = raw.index(b"PK\x01\x02")
    lied = raw[:central + 24] + (2).to_bytes(4, "little") + raw[central + 28:]
    with pytest.raises((ZipRefused, zipfile.BadZipFile)):
        unpack(lied, tmp_path / "into")
    assert not (tmp_path / "into" / "a" / "1.png").exists() or \
        (tmp_path / "into" / "a" / "1.png").stat().st_size <= 2


def test_one_wrapping_folder_is_dropped_and_names_are_made_safe(tmp_path):
    count = unpack(digits_zip(2, wrapper="my digits/"), tmp_path / "into")
    assert count == 4
    assert sorted(p.name for p in (tmp_path / "into").iterdir()) == ["3", "7"]
    assert safe_name("cats & dogs") == "cats _ dogs"
    assert safe_name("..hidden") == "hidden"
    for bad in ("..", "", "///"):
        with pytest.raises(ZipRefused):
            safe_name(bad)


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    with pytest.raises(ZipRefused, match="not a zip"):
        unpack(b"PNG, not a zip", tmp_path / "into")
    assert not (tmp_path / "into").exists()
