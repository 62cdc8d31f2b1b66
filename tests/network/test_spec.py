"""The spec grammar: golden parses, round trips, and every error message pinned."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convnet.errors import SpecError
from convnet.network.presets import PRESETS
from convnet.network.spec import (
    Activation,
    Add,
    BatchNorm,
    Conv,
    Dense,
    DepthwiseConv,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Pool,
    Skip,
    Whiten,
    format_spec,
    parse_spec,
    resolve,
)

KERAS = "conv32k3-relu-maxpool2-conv64k3-relu-maxpool2-dropout0.5-fc10"
TEXTS = "conv32k3-relu-maxpool2-conv64k3-relu-maxpool2-fc128-relu-fc10"


def test_the_two_required_specs_parse_as_written():
    assert parse_spec(TEXTS) == [
        Conv(32, 3), Activation("relu"), Pool("max", 2), Conv(64, 3), Activation("relu"),
        Pool("max", 2), Dense(128), Activation("relu"), Dense(10)]
    assert parse_spec(KERAS)[-2:] == [Dropout(0.5), Dense(10)]
    assert format_spec(parse_spec(TEXTS)) == TEXTS
    assert format_spec(parse_spec(KERAS)) == KERAS


@pytest.mark.parametrize("token, layer", [
    ("conv32k3", Conv(32, 3, 1, 0)),
    ("conv8k5s2", Conv(8, 5, 2, 0)),
    ("conv8k5p2", Conv(8, 5, 1, 2)),
    ("conv8k3s2p1", Conv(8, 3, 2, 1)),
    ("conv8k3psame", Conv(8, 3, 1, "same")),
    ("conv8k3pvalid", Conv(8, 3, 1, 0)),
    ("conv8k3s2ptf", Conv(8, 3, 2, "tf")),
    ("conv8k3g4", Conv(8, 3, 1, 0, 4)),
    ("conv8k3s2ptfg2nb", Conv(8, 3, 2, "tf", 2, False)),
    ("dwconvk3", DepthwiseConv(3)),
    ("dwconvk5s2ptfnb", DepthwiseConv(5, 2, "tf", 1, False)),
    ("dwconvk3p1m2", DepthwiseConv(3, 1, 1, 2)),
    ("relu6", Activation("relu6")),
    ("bneps0.001", BatchNorm(0.001)),
    ("maxpool2", Pool("max", 2, None)),
    ("maxpool3s2", Pool("max", 3, 2)),
    ("avgpool2", Pool("avg", 2, None)),
    ("gap", GlobalAvgPool()),
    ("relu", Activation("relu")),
    ("tanh", Activation("tanh")),
    ("sigmoid", Activation("sigmoid")),
    ("bn", BatchNorm()),
    ("dropout", Dropout(0.5)),
    ("dropout0.25", Dropout(0.25)),
    ("dropout.1", Dropout(0.1)),
    ("flatten", Flatten()),
    ("fc128", Dense(128)),
    ("fc", Dense(None)),
])
def test_golden_tokens(token, layer):
    assert parse_spec(token) == [layer]


def test_a_residual_connection_parses_and_round_trips():
    spec = "conv4k3p1-skip-conv4k3p1-bn-add-fc"
    assert parse_spec(spec)[1:5] == [Skip(), Conv(4, 3, 1, 1), BatchNorm(), Add()]
    assert format_spec(parse_spec(spec)) == spec


def test_canonical_form_drops_defaults():
    assert format_spec(parse_spec("CONV8k3s1pvalid-Dropout")) == "conv8k3-dropout0.5"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip(name):
    spec = PRESETS[name].spec
    assert format_spec(parse_spec(spec)) == spec


_maps = st.one_of(
    st.builds(Conv, st.integers(1, 64), st.integers(1, 7), st.integers(1, 3),
              st.one_of(st.integers(0, 3), st.just("same"))).filter(
        lambda c: c.padding != "same" or c.kernel % 2 == 1),
    st.builds(Pool, st.sampled_from(["max", "avg"]), st.integers(1, 4),
              st.one_of(st.none(), st.integers(1, 4))),
    st.just(GlobalAvgPool()), st.just(BatchNorm()),
    st.builds(Activation, st.sampled_from(["relu", "tanh", "sigmoid", "gelu"])),
    st.builds(Dropout, st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75])),
)
_vectors = st.one_of(
    st.builds(Dense, st.integers(1, 512)), st.just(BatchNorm()),
    st.builds(Activation, st.sampled_from(["relu", "tanh", "sigmoid", "gelu"])),
    st.builds(Dropout, st.sampled_from([0.0, 0.3, 0.5])),
)


@given(st.lists(_maps, min_size=1, max_size=6), st.lists(_vectors, max_size=4),
       st.booleans())
def test_round_trip_layers_to_text_to_layers(maps, vectors, bare_last):
    layers = maps + vectors + [Dense(None if bare_last else 10)]
    text = format_spec(layers)
    assert parse_spec(text) == layers
    assert format_spec(parse_spec(text)) == text


def test_resolve_sizes_output_and_adds_flatten():
    assert resolve(parse_spec("conv8k3-relu-fc"), 4) == [
        Conv(8, 3), Activation("relu"), Flatten(implied=True), Dense(4)]
    assert resolve(parse_spec("conv8k3-gap"), 3)[-2:] == [Flatten(implied=True), Dense(3)]
    assert resolve(parse_spec("conv8k3-flatten-fc5"), 5)[-2:] == [Flatten(), Dense(5)]


@pytest.mark.parametrize("spec, message", [
    ("", "The spec must name at least one layer, e.g. 'conv32k3-relu-fc'. Received: ''."),
    ("conv8k3--relu", "Spec token 2 is empty: two '-' in a row, or a '-' at an end. "
     "Received: 'conv8k3--relu'."),
    ("conv8k3-maxpol2", "Spec token 2 'maxpol2' is not a layer. Expected one of: conv, "
     "dwconv, maxpool, avgpool, gap, fc, relu, relu6, tanh, sigmoid, gelu, bn, dropout, "
     "flatten, whiten, skip, add. Did you mean 'maxpool'? Received: 'maxpol2'."),
    ("conv32", "Spec token 1 'conv32' is not a valid conv layer. Expected conv<filters>k"
     "<kernel>[s<stride>][p<padding>|psame|ptf|pvalid][g<groups>][nb], e.g. conv32k3. "
     "Received: 'conv32'."),
    ("dwconv3", "Spec token 1 'dwconv3' is not a valid dwconv layer. Expected dwconvk"
     "<kernel>[s<stride>][p<padding>|psame|ptf|pvalid][m<multiplier>][nb], e.g. dwconvk3. "
     "Received: 'dwconv3'."),
    ("conv8k3g0", "Spec token 1 'conv8k3g0' needs groups of at least 1. Received: groups=0."),
    ("conv0k3", "Spec token 1 'conv0k3' needs filters of at least 1. Received: filters=0."),
    ("conv8k0", "Spec token 1 'conv8k0' needs kernel of at least 1. Received: kernel=0."),
    ("conv8k3s0", "Spec token 1 'conv8k3s0' needs stride of at least 1. Received: stride=0."),
    ("conv8k4psame", "Spec token 1 'conv8k4psame' uses psame, which needs an odd kernel "
     "size; write the padding as a number instead, or ptf (TensorFlow's same). "
     "Received: kernel=4."),
    ("maxpool0", "Spec token 1 'maxpool0' needs window of at least 1. Received: window=0."),
    ("maxpool2x", "Spec token 1 'maxpool2x' is not a valid maxpool layer. Expected "
     "maxpool<window>[s<stride>], e.g. maxpool2. Received: 'maxpool2x'."),
    ("fc0", "Spec token 1 'fc0' needs units of at least 1. Received: units=0."),
    ("dropout1.5", "Spec token 1 'dropout1.5' needs a probability in [0, 1). "
     "Received: p=1.5."),
    ("fc-relu-fc", "Spec token 1 'fc' has no size, which only the last layer may omit. Give "
     "it a number of units, e.g. fc128. Received: 'fc'."),
    ("fc10-conv8k3", "Spec token 2 'conv8k3' works on feature maps, but token 1 'fc10' "
     "already flattened them to a vector. Put convolution and pooling layers before the "
     "first fc. Received: 'conv8k3'."),
    ("flatten-flatten", "Spec token 2 'flatten' flattens again after token 1. Remove it. "
     "Received: 'flatten'."),
    ("9", "Spec token 1 '9' is not a layer. Expected one of: conv, dwconv, maxpool, avgpool, "
     "gap, fc, relu, relu6, tanh, sigmoid, gelu, bn, dropout, flatten, whiten, skip, add. "
     "Received: '9'."),
    ("conv8k3-add-fc", "Spec token 2 'add' has no skip before it to add back. Start the "
     "residual connection with 'skip', e.g. skip-conv8k3p1-add. Received: 'add'."),
    ("conv8k3-skip-relu-fc", "Spec token 2 'skip' is never closed. End the residual "
     "connection with 'add', e.g. skip-conv8k3p1-add. Received: 'skip'."),
    ("bneps2", "Spec token 1 'bneps2' needs an epsilon in (0, 1). Received: eps=2."),
    ("conv8k3-whiten2", "Spec token 2 'whiten2' must be the first layer: its filters are "
     "computed from the input images' patches. Received: 'whiten2'."),
    ("whiten0", "Spec token 1 'whiten0' needs kernel of at least 1. Received: kernel=0."),
])
def test_error_messages(spec, message):
    with pytest.raises(SpecError) as caught:
        parse_spec(spec)
    assert str(caught.value) == message


def test_output_size_mismatch_message():
    with pytest.raises(SpecError) as caught:
        resolve(parse_spec(TEXTS), 2)
    assert str(caught.value) == (
        "The last layer 'fc10' (token 9) has 10 units but the data has 2 classes. End the "
        "spec with a bare 'fc' to size it from the data, or with fc2. Received: fc10 for 2 "
        "classes.")


def test_whiten_and_gelu_round_trip():
    layers = parse_spec("whiten2-gelu-conv8k3p1-maxpool2-bn-gelu-fc")
    assert layers[:2] == [Whiten(2), Activation("gelu")]
    assert format_spec(layers) == "whiten2-gelu-conv8k3p1-maxpool2-bn-gelu-fc"
