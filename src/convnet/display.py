"""The building blocks of convnet's rich display in notebooks: plain HTML tables, bars and
images embedded as base64 PNG data.

The objects a user holds (a network, a run, a prediction, an evaluation, a data check, the
pictures of `explain`) each offer ``_repr_html_`` built from these. No widgets, scripts or
external files: plain HTML renders the same in JupyterLab, classic Jupyter, VS Code, Colab
and nbconvert's static HTML, where widget state is often lost (fastai's cleaner widget
breaks in several of them). Styles are inline, since a notebook may drop ``<style>`` blocks
from untrusted output.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

import torch

# every block's outer <div>: its class names the object, so a page (or a test) can find it
BLOCK = ("<div class=\"convnet convnet-{kind}\" style=\"font-family: sans-serif; "
         "font-size: 13px; margin: 4px 0\">{body}</div>")
CELL = "padding: 2px 8px; border-bottom: 1px solid #ddd"
SMALLEST_SIDE = 112  # small images (digits are 28 px) are enlarged to at least this


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def block(kind: str, title: str, *parts: str) -> str:
    """One object's display: a bold title, then its parts in order."""
    heading = f"<div style=\"font-weight: bold; margin-bottom: 4px\">{escape(title)}</div>"
    return BLOCK.format(kind=escape(kind), body=heading + "".join(parts))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]],
          numeric: Sequence[bool] | None = None) -> str:
    """A table; ``numeric`` columns are right-aligned (default: none)."""
    right = list(numeric or [False] * len(headers))
    align = ["right" if flag else "left" for flag in right]
    head = "".join(f"<th style=\"{CELL}; text-align: {a}\">{escape(h)}</th>"
                   for h, a in zip(headers, align))
    body = "".join("<tr>" + "".join(f"<td style=\"{CELL}; text-align: {a}\">{escape(v)}</td>"
                                    for v, a in zip(row, align)) + "</tr>" for row in rows)
    return (f"<table style=\"border-collapse: collapse; margin: 4px 0\"><thead><tr>{head}"
            f"</tr></thead><tbody>{body}</tbody></table>")


def facts(pairs: Sequence[tuple[str, object]]) -> str:
    """Name: value lines, one per pair."""
    return "".join(f"<div><span style=\"color: #555\">{escape(name)}:</span> "
                   f"{escape(value)}</div>" for name, value in pairs)


def bars(probabilities: Sequence[tuple[str, float]], width: int = 160) -> str:
    """Horizontal probability bars, most likely first: the texts' "0.92 dog, 0.08 cat"."""
    rows = []
    for name, p in probabilities:
        filled = max(0, min(width, round(p * width)))
        rows.append(f"<tr><td style=\"padding: 1px 6px\">{escape(name)}</td>"
                    f"<td style=\"padding: 1px 6px\"><div style=\"width: {width}px; "
                    f"background: #eee\"><div style=\"width: {filled}px; height: 12px; "
                    f"background: #4c72b0\"></div></div></td>"
                    f"<td style=\"padding: 1px 6px; text-align: right\">{p:.2f}</td></tr>")
    return f"<table style=\"border-collapse: collapse\">{''.join(rows)}</table>"


def image(png: bytes, alt: str, width: int | None = None) -> str:
    """An ``<img>`` holding ``png`` itself (a data URI), so the page needs no other file."""
    encoded = base64.b64encode(png).decode("ascii")
    size = "" if width is None else f" width=\"{width}\""
    return (f"<img src=\"data:image/png;base64,{encoded}\" alt=\"{escape(alt)}\"{size} "
            "style=\"image-rendering: pixelated; margin: 2px\">")


def pixels_png(pixels: torch.Tensor, smallest: int = SMALLEST_SIDE) -> bytes:
    """uint8 (C, H, W) pixels (C = 1 or 3) as PNG bytes; small images enlarged by a whole
    factor so that each pixel stays a sharp square."""
    from PIL import Image

    picture = pixels.detach().cpu()
    factor = max(1, -(-smallest // max(1, min(picture.shape[1:]))))  # ceil division
    if factor > 1:  # (C, H, W) -> (C, factor·H, factor·W)
        picture = picture.repeat_interleave(factor, 1).repeat_interleave(factor, 2)
    array = picture[0].numpy() if picture.shape[0] == 1 else picture.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def drawn(draw: Callable[[BinaryIO], Any]) -> bytes | None:
    """What ``draw`` (a `convnet.plots` function given its target) saves, as PNG bytes;
    None without matplotlib, whose absence a display reports as a line rather than fails."""
    from convnet import extras

    if not extras.installed("plots"):
        return None
    buffer = io.BytesIO()
    draw(buffer)
    return buffer.getvalue()


def picture(png: bytes | None, alt: str, width: int | None = None) -> str:
    """An embedded picture, or one line saying why there is none."""
    if png is None:
        return ("<div style=\"color: #a00\">(pictures need matplotlib: "
                "pip install 'convnet[plots]')</div>")
    return image(png, alt, width)


class Numbers:
    """A small grid of numbers (an image, a filter, a feature map) shown as the texts draw
    one: each cell its value, shaded from dark (lowest) to light (highest). (H, W), or
    (C, H, W) / (1, C, H, W) as one grid per channel. `convnet.show` makes one."""

    def __init__(self, values: Any, title: str | None = None):
        grid = torch.as_tensor(values).detach().cpu().float()
        while grid.dim() > 3 and grid.shape[0] == 1:
            grid = grid[0]  # (1, C, H, W) -> (C, H, W): one image of a batch
        if grid.dim() == 2:
            grid = grid[None]  # (H, W) -> (1, H, W)
        if grid.dim() != 3:
            from convnet.errors import ConvnetError

            raise ConvnetError("values must be a grid (H, W) or channels of grids (C, H, W). "
                               f"Received: a tensor of shape {tuple(grid.shape)}.")
        self.grid, self.title = grid, title  # (C, H, W)

    def _cell(self, value: float) -> str:
        return f"{int(value)}" if float(value).is_integer() else f"{value:.2f}"

    def __repr__(self) -> str:
        lines = [] if self.title is None else [self.title]
        for channel in self.grid:
            cells = [[self._cell(float(v)) for v in row] for row in channel]
            width = max(len(cell) for row in cells for cell in row)
            lines += [" ".join(cell.rjust(width) for cell in row) for row in cells] + [""]
        return "\n".join(lines).rstrip()

    def _repr_html_(self) -> str:
        low, high = float(self.grid.min()), float(self.grid.max())
        span = (high - low) or 1.0
        tables = []
        for channel in self.grid:
            rows = []
            for row in channel:
                cells = []
                for value in row.tolist():
                    shade = round(40 + 215 * (value - low) / span)  # 40: dark, not black
                    ink = "#000" if shade > 140 else "#fff"
                    cells.append(f"<td style=\"width: 28px; height: 28px; text-align: center; "
                                 f"border: 1px solid #999; background: rgb({shade},{shade},"
                                 f"{shade}); color: {ink}\">{self._cell(value)}</td>")
                rows.append("<tr>" + "".join(cells) + "</tr>")
            tables.append("<table style=\"border-collapse: collapse; display: inline-table; "
                          f"margin-right: 12px\">{''.join(rows)}</table>")
        channels, height, width = self.grid.shape
        title = self.title or f"{height}×{width}" + (f"×{channels}" if channels > 1 else "")
        return block("numbers", title, "".join(tables))


def show(values: Any, title: str | None = None) -> Numbers:
    """A grid of numbers that a notebook draws as shaded cells, each with its value.

    >>> show([[1, 0], [0, 1]])
    1 0
    0 1
    """
    return Numbers(values, title)
