"""What a network costs and sees: shapes, parameters, multiply-adds, receptive fields,
as a table in a terminal or a notebook.

And the comparison the texts make: the weights a fully connected network with one hidden
layer would need on the same input.
"""

from __future__ import annotations

from dataclasses import dataclass

from convnet import display
from convnet.network.shapes import LayerInfo, format_shape

HEADERS = ("#", "layer", "output", "params", "MACs", "receptive field")


@dataclass(frozen=True)
class FullyConnectedCost:
    """A network input -> hidden -> classes, fully connected, for comparison."""

    inputs: int
    hidden: int
    classes: int

    @property
    def weights(self) -> int:
        return self.inputs * self.hidden + self.hidden * self.classes

    @property
    def biases(self) -> int:
        return self.hidden + self.classes


@dataclass(frozen=True, repr=False)
class Summary:
    spec: str
    input_shape: tuple[int, int, int]  # (H, W, C)
    rows: list[LayerInfo]
    fully_connected: FullyConnectedCost

    @property
    def params(self) -> int:
        return sum(row.params for row in self.rows)

    @property
    def macs(self) -> int:
        return sum(row.macs for row in self.rows)

    def table_rows(self) -> list[tuple[str, ...]]:
        """One row of display strings per layer: #, layer, output, params, MACs, field."""
        height, width, _ = self.input_shape
        rows = []
        for row in self.rows:
            field = (f"{row.receptive_field}×{row.receptive_field}" if row.receptive_field
                     else f"all {height}×{width}")
            rows.append((str(row.position or "·"), row.name, format_shape(row.out_shape),
                         f"{row.params:,}", f"{row.macs:,}", field))
        return rows

    def comparison(self) -> str:
        """The texts' comparison, in one sentence."""
        fc = self.fully_connected
        ratio = (fc.weights + fc.biases) / max(self.params, 1)
        return (f"A fully connected network with one hidden layer of {fc.hidden:,} units on "
                f"the same input needs {fc.inputs:,}×{fc.hidden:,} + {fc.hidden:,}×{fc.classes} "
                f"= {fc.weights:,} weights (+ {fc.biases:,} biases); this CNN has "
                f"{self.params:,} parameters, " + (f"{ratio:,.1f}× fewer." if ratio >= 1 else
                                                    f"{1 / ratio:,.1f}× more."))

    def __str__(self) -> str:
        """The table as text, the totals and the comparison (what `convnet summary` says)."""
        rows = [HEADERS, *self.table_rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
        lines = ["  ".join(cell.rjust(width) if i in (3, 4) else cell.ljust(width)
                           for i, (cell, width) in enumerate(zip(row, widths))).rstrip()
                 for row in rows]
        return "\n".join([self.spec, *lines, self.totals(), self.comparison()])

    __repr__ = __str__  # a notebook without HTML shows the same table

    def totals(self) -> str:
        height, width, channels = self.input_shape
        return (f"input {height}×{width}×{channels}: {self.params:,} parameters, "
                f"{self.macs:,} multiply-adds per image")

    def _repr_html_(self) -> str:
        return display.block("summary", self.spec, display.table(
            HEADERS, self.table_rows(), [False, False, False, True, True, False]),
            display.facts([("total", self.totals()), ("against a dense network",
                                                      self.comparison())]))


def summary_of(network, hidden: int = 2000) -> Summary:
    """The summary of a built network (anything with ``spec``, ``input_shape``,
    ``num_classes`` and ``infos``: `Network`, without importing it)."""
    height, width, channels = network.input_shape
    cost = FullyConnectedCost(height * width * channels, hidden, network.num_classes)
    return Summary(network.spec, network.input_shape, list(network.infos), cost)
