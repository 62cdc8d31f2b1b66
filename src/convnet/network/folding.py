"""A network for answering only: each batch norm folded into the convolution before it.

In eval mode a batch norm is a per-channel scale and shift of its convolution's output, so
the convolution's weights and bias can carry it (y = γ(Wx − μ)/σ + β = (γW/σ)x + β − γμ/σ),
and one pass over each layer's output is saved. For EfficientNet-Lite0 on 2 CPU cores,
that is 49 of its 153 layers: passes of 31 images at 160 px took 3.40 ms per image
instead of 3.92 in fp32, and 1.94 ms instead of 2.27 in bf16 (`python -m bench speed
folding`; bench/HISTORY.md, "The head alone's estimate"), with logits within 2.1e-7 of the
network's.

The folded network is a copy: the network itself keeps its layers, for training, export,
the saved weights and looking inside (`forward_intermediates` shows each layer).

The copy's weights take the layout its batches come in. A network of one input channel
whose weights are in torch's default layout ran every layer in NCHW on channels-last
batches: its first convolution's input and weights read as either layout, so torch takes
NCHW, and each layer after follows. Passes took 2.2-3.6 times as long as with
channels-last weights for the 28 px digits network and a 64 px one, 1.3-1.5 times for
EfficientNet-Lite0 at 128 px, in fp32 and bf16 (`python -m bench speed layout`; RGB
networks: 0.92-1.09). Weights read from a file, or saved in torch's default layout, are
in it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from convnet.network.model import Network


def folded(network: nn.Module, layout: torch.memory_format = torch.preserve_format
           ) -> nn.Module:
    """An eval-mode copy of ``network`` with every batch norm that directly follows a
    convolution folded into it (and left as an identity), its 4-D weights in ``layout``
    (the batches' memory format); ``network`` itself where it is not a `Network` (e.g.
    wrapped for several processes), or has no such pair and its weights are in ``layout``
    already."""
    if not isinstance(network, Network):
        return network
    body = network.body
    pairs = [index for index in range(len(body) - 1)
             if isinstance(body[index], nn.Conv2d) and isinstance(body[index + 1], nn.BatchNorm2d)
             and body[index + 1].track_running_stats]
    if not pairs and _laid_out(network, layout):
        return network
    with torch.inference_mode(False), torch.no_grad():
        # outside inference mode: the copy's parameters must be ordinary tensors
        answer = copy.deepcopy(network).eval()
        for index in pairs:
            answer.body[index] = fuse_conv_bn_eval(answer.body[index], answer.body[index + 1])
            answer.body[index + 1] = nn.Identity()
        return answer if layout == torch.preserve_format else answer.to(memory_format=layout)


def _laid_out(network: nn.Module, layout: torch.memory_format) -> bool:
    return layout == torch.preserve_format or all(
        weight.is_contiguous(memory_format=layout)
        for weight in network.parameters() if weight.dim() == 4)


def weights_key(network: nn.Module) -> tuple:
    """What changes when any of ``network``'s weights or statistics change (in place, by
    replacement or by a move to another device): a folded copy made under an equal key
    still answers as the network does."""
    return tuple((id(tensor), tensor.data_ptr(), tensor._version)
                 for tensor in (*network.parameters(), *network.buffers()))
