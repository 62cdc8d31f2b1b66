"""A network's summary as a notebook and a terminal show it, and filters set by hand."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

import convnet
from convnet.errors import ConvnetError

SPEC = "conv8k3-relu-maxpool2-conv16k3s2p1-relu-fc"


def test_a_network_shows_its_summary_table_and_the_dense_comparison():
    network = convnet.build(SPEC, "50x50x3", 2)
    summary = convnet.summarize(network)
    html = network._repr_html_()
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    assert len(rows) == 1 + len(summary.rows)  # the header, then a row per layer
    for info, row in zip(summary.rows, rows[1:]):
        assert f">{info.name}<" in row and f">{info.params:,}<" in row
    assert "15,004,000 weights" in html
    assert f"{network.num_params:,} parameters" in html  # the total counts every weight


def test_the_summary_as_text_has_a_line_per_layer_and_the_totals():
    summary = convnet.summarize(convnet.build(SPEC, "50x50x3", 2))
    lines = repr(summary).splitlines()
    assert lines[0] == summary.spec and lines[1].split()[:3] == ["#", "layer", "output"]
    assert [line.split()[1] for line in lines[2:2 + len(summary.rows)]] == \
        [info.name for info in summary.rows]
    assert lines[-1] == summary.comparison() and f"{summary.macs:,}" in lines[-2]


def test_filters_set_by_hand_convolve_as_torch_does():
    network = convnet.build("conv2k3s2p1-fc", "7x7x3", 2)
    weights, bias = torch.randn(2, 3, 3, 3), torch.tensor([0.5, -1.0])
    network.set_filters(1, weights, bias)
    image = torch.randn(1, 3, 7, 7)
    got = network.forward_intermediates(image)[0][1]
    assert torch.allclose(got, F.conv2d(image, weights, bias, stride=2, padding=1), atol=1e-6)
    network.set_filters(1, weights, 0.0)  # one number: every filter's bias
    assert torch.equal(network.body[0].bias.detach(), torch.zeros(2))


def test_filters_of_another_shape_or_a_layer_without_weights_are_refused():
    network = convnet.build("conv2k3-relu-fc", "7x7x1", 2)
    with pytest.raises(ConvnetError, match=r"layer 1 must have the shape \(2, 1, 3, 3\)\. "
                                           r"Received: \(2, 3, 3, 3\)"):
        network.set_filters(1, torch.zeros(2, 3, 3, 3))
    with pytest.raises(ConvnetError, match="layer must be the number of a layer with weights"):
        network.set_filters(2, torch.zeros(1))  # layer 2 is the ReLU
