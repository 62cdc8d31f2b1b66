"""Looking inside a network: feature maps and Grad-CAM (the arithmetic at one position is in
`convnet.network.arithmetic`). Tensors only; `convnet.plots` draws them.

All functions take a normalised input batch of one image, (1, C, H, W), as the network sees
it, and run the layers in the spec's order (not `Network.forward`'s faster order), so every
map is the one the summary describes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from convnet.errors import ConvnetError
from convnet.network.model import Network
from convnet.network.shapes import LayerInfo


@torch.no_grad()
def feature_maps(network: Network, x: torch.Tensor) -> list[tuple[LayerInfo, torch.Tensor]]:
    """Every layer's output for one image: (info, tensor of the layer's out_shape)."""
    was_training = network.training
    network.eval()
    outputs = [(info, out[0]) for info, out in network.forward_intermediates(x)]
    network.train(was_training)
    return outputs


def gradcam_layer(network: Network) -> int:
    """Index of the layer Grad-CAM looks at: the last one before the head whose maps are
    still larger than 1×1 (later maps have no "where" left to show)."""
    candidates = [i for i, info in enumerate(network.infos[: network.head_start])
                  if len(info.out_shape) == 3 and info.out_shape[1] * info.out_shape[2] > 1]
    if not candidates:
        raise ConvnetError("Grad-CAM needs a layer with feature maps larger than 1×1; this "
                           f"network has none. Received: spec {network.spec!r}.")
    return candidates[-1]


def gradcam(network: Network, x: torch.Tensor, class_index: int) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al., 2017) for one image and class: (H, W) in [0, 1].

    Each map of the chosen layer is weighted by the mean gradient of the class's logit over
    that map; the positive part of the weighted sum, upsampled to the input, shows where
    evidence for the class was found. All zeros when nothing spoke for it.
    """
    target = gradcam_layer(network)
    was_training = network.training
    network.eval()
    with torch.enable_grad():
        outputs = network.forward_intermediates(x.detach())
        kept = outputs[target][1]  # (1, K, h, w)
        logits = outputs[-1][1]  # (1, classes)
        # the gradient with respect to the maps only: the weights' .grad stay untouched
        (grads,) = torch.autograd.grad(logits[0, class_index], kept)
    network.train(was_training)
    maps, grads = kept.detach()[0], grads[0]  # (K, h, w) each
    weights = grads.mean(dim=(1, 2))  # (K,)
    cam = F.relu((weights[:, None, None] * maps).sum(0))  # (h, w)
    cam = F.interpolate(cam[None, None], size=x.shape[2:], mode="bilinear",
                        align_corners=False)[0, 0]  # (H, W)
    peak = cam.max()
    return cam / peak if peak > 0 else cam
