"""Networks: the spec language, the shape arithmetic, the modules, presets, the summary, and
looking inside (feature maps, Grad-CAM, the arithmetic at one position).

Imports nothing above it: any stage may use a network, a network knows no data or runs.
"""

from convnet.network.model import Network, build, layer_shapes, parse_input_shape
from convnet.network.presets import PRESETS, resolve_arch
from convnet.network.shapes import LayerInfo
from convnet.network.spec import format_spec, parse_spec
from convnet.network.summary import Summary, summarize

__all__ = ["PRESETS", "LayerInfo", "Network", "Summary", "build", "format_spec",
           "layer_shapes", "parse_input_shape", "parse_spec", "resolve_arch", "summarize"]
