"""Networks: the spec language, the shape arithmetic, the modules, presets, the summary, and
looking inside (feature maps, Grad-CAM, the arithmetic at one position).

Imports nothing above it: any stage may use a network, a network knows no data or runs.
"""

from convnet.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "Network": "convnet.network.model",
    "build": "convnet.network.model",
    "layer_shapes": "convnet.network.model",
    "parse_input_shape": "convnet.network.model",
    "PRESETS": "convnet.network.presets",
    "resolve_arch": "convnet.network.presets",
    "LayerInfo": "convnet.network.shapes",
    "format_spec": "convnet.network.spec",
    "parse_spec": "convnet.network.spec",
    "Summary": "convnet.network.summary",
    "summarize": "convnet.network.summary",
})

__all__ = ["PRESETS", "LayerInfo", "Network", "Summary", "build", "format_spec",
           "layer_shapes", "parse_input_shape", "parse_spec", "resolve_arch", "summarize"]
