"""What ``--data`` accepts: built-in datasets by name, or a path.

>>> from convnet import datasets
>>> datasets.load("digits").input_shape
(28, 28, 1)
"""

from convnet.lazy import lazy_exports

# augmentation policies (`convnet.data.augment`), here so that the config and the command
# line read them without importing torch
POLICIES = ("none", "light", "strong")

__getattr__, __dir__ = lazy_exports(__name__, {
    "Dataset": "convnet.data.dataset",
    "Split": "convnet.data.dataset",
    "catalogue": "convnet.data.named",
    "export": "convnet.data.write",
    "folder_layout": "convnet.data.sources",
    "labelled": "convnet.data.sources",
    "load": "convnet.data.sources",
    "parse_data_arg": "convnet.data.sources",
    "portable": "convnet.data.sources",
    "sized": "convnet.data.rescale",
    "with_channels": "convnet.data.sources",
})

__all__ = ["Dataset", "Split", "catalogue", "export", "folder_layout", "labelled", "load",
           "parse_data_arg", "portable", "sized", "with_channels"]
