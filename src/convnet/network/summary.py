"""`summarize`: a network's `Summary` (`convnet.network.costs`), from a built network or a
spec string."""

from __future__ import annotations

from convnet.errors import ConvnetError
from convnet.network.costs import FullyConnectedCost, Summary, summary_of
from convnet.network.model import Network, build

__all__ = ["FullyConnectedCost", "Summary", "summarize"]


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
    return summary_of(network, hidden)
