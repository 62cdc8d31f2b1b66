"""The HTML building blocks of notebook display: escaped text, embedded PNGs that decode
to the pixels given, and grids of numbers."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import convnet
from conftest import embedded_images
from convnet import display, extras
from convnet.errors import ConvnetError


def test_tables_escape_what_they_show():
    html = display.table(("class", "n"), [("<b>cat</b> & dog", 3)], [False, True])
    assert "&lt;b&gt;cat&lt;/b&gt; &amp; dog" in html and "<b>" not in html
    assert html.count("<tr>") == 2


def test_small_images_are_enlarged_by_a_whole_factor_pixel_for_pixel():
    pixels = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    [decoded] = embedded_images(display.image(display.pixels_png(pixels), "digit"))
    assert decoded.size == (112, 112)  # 28 × 4: the smallest factor reaching 112 px
    expected = np.kron(pixels[0].numpy(), np.ones((4, 4), dtype=np.uint8))
    assert np.array_equal(np.asarray(decoded), expected)


def test_colour_images_keep_their_channels():
    pixels = torch.randint(0, 256, (3, 200, 150), dtype=torch.uint8)
    [decoded] = embedded_images(display.image(display.pixels_png(pixels), "photo"))
    assert np.array_equal(np.asarray(decoded), pixels.permute(1, 2, 0).numpy())


def test_numbers_show_every_value_shaded_darkest_to_lightest():
    grid = torch.tensor([[-1.0, 3.0], [0.5, 2.0]])
    shown = convnet.show(grid, "a map")
    assert repr(shown) == "a map\n  -1    3\n0.50    2"
    html = shown._repr_html_()
    cells = re.findall(r"background: rgb\((\d+),\d+,\d+\); color: #\w+\">([^<]+)</td>", html)
    assert [value for _, value in cells] == ["-1", "3", "0.50", "2"]
    shades = {value: int(shade) for shade, value in cells}
    assert shades["-1"] < shades["0.50"] < shades["2"] < shades["3"]


def test_numbers_take_channels_and_a_batch_of_one():
    html = convnet.show(torch.zeros(1, 3, 2, 2))._repr_html_()
    assert html.count("<table") == 3 and "2×2×3" in html


def test_numbers_refuse_a_batch():
    with pytest.raises(ConvnetError, match=r"values must be a grid .* shape \(2, 3, 4, 4\)"):
        convnet.show(torch.zeros(2, 3, 4, 4))


def test_pictures_say_how_to_get_matplotlib_when_it_is_missing(monkeypatch):
    monkeypatch.setattr(extras, "installed", lambda extra, modules=None: False)
    assert display.drawn(lambda target: target.write(b"never")) is None
    assert "pip install 'convnet[plots]'" in display.picture(None, "curves")
