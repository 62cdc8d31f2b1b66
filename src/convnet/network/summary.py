"""What a network costs and sees: shapes, parameters, multiply-adds, receptive fields.

And the comparison the texts make: the weights a fully connected network with one hidden
layer would need on the same input.
"""

from __future__ import annotations

from dataclasses import dataclass

from convnet.errors import ConvnetError
from convnet.network.model import Network, build
from convnet.network.shapes import LayerInfo, format_shape


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


@dataclass(frozen=True)
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


def summarize(network: Network | str, hidden: int = 2000, *,
              input_shape: str | tuple[int, int, int] = (28, 28, 1),
              num_classes: int = 10) -> Summary:
    """Summarise a network.

    Args:
        network: from `convnet.build` or a loaded run; or a spec string or preset name,
            built for ``input_shape`` and ``num_classes``.
        hidden: hidden units of the fully connected network to compare against.

    >>> from convnet.network.model import build
    >>> s = summarize(build("conv8k3-relu-fc", "50x50x3", 2))
    >>> s.fully_connected.weights
    15004000
    """
    if isinstance(network, str):
        network = build(network, input_shape, num_classes)
    if not isinstance(network, Network):
        raise ConvnetError("network must be a Network (convnet.build, run.network) or a spec "
                           f"string. Received: network={network!r} ({type(network).__name__}).")
    if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 1:
        raise ConvnetError(f"hidden must be an integer of at least 1. Received: hidden={hidden!r}.")
    height, width, channels = network.input_shape
    cost = FullyConnectedCost(height * width * channels, hidden, network.num_classes)
    return Summary(network.spec, network.input_shape, list(network.infos), cost)
