"""The sampled layers as drop-ins for torch.nn: positional arguments in torch.nn's order, the
attributes people read off conv layers, checkpoints of plain layers brought in, whole models
saved and loaded."""

import io

import pytest
import torch
from torch import nn

import wsnet_ext

CONV_ATTRIBUTES = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                   "padding_mode")


@pytest.mark.parametrize("cls,plain_cls,args", [
    (wsnet_ext.WSConv1d, nn.Conv1d, (16, 32, 3, 2, 1)),
    (wsnet_ext.WSConv1d, nn.Conv1d, (16, 32, 5, 1, "same", 2)),
    (wsnet_ext.WSConv2d, nn.Conv2d, (8, 12, (3, 2), (2, 1), (1, 0), 1)),
    (wsnet_ext.HashedConv1d, nn.Conv1d, (16, 32, 3, 2, 1, 2, 1, False)),
    (wsnet_ext.HashedConv2d, nn.Conv2d, (8, 12, 3, 1, "valid")),
])
def test_positional_arguments_mean_what_they_mean_for_torch_nn(cls, plain_cls, args):
    extra = {"compression": 4} if cls.__name__.startswith("Hashed") else {"sample_stride": 2, "channel_repeat": 2}
    ours, plain = cls(*args, **extra), plain_cls(*args)
    for name in CONV_ATTRIBUTES:
        assert getattr(ours, name) == getattr(plain, name), name
        assert type(getattr(ours, name)) is type(getattr(plain, name)), name
    assert (ours.bias is None) == (plain.bias is None)
    x = torch.randn((2, args[0], 40) if plain_cls is nn.Conv1d else (2, args[0], 20, 18))
    assert ours(x).shape == plain(x).shape


def test_the_same_outputs_as_nn_conv1d_on_the_sampled_weight_for_a_ported_line():
    torch.manual_seed(0)
    layer = wsnet_ext.WSConv1d(16, 32, 3, 2, 1, sample_stride=2)  # nn.Conv1d(16, 32, 3, 2, 1): stride 2, padding 1
    x = torch.randn(2, 16, 41, dtype=torch.float32)
    torch.testing.assert_close(layer(x), torch.nn.functional.conv1d(x, layer.weight, layer.bias, 2, 1))


@pytest.mark.parametrize("call,keyword", [
    (lambda: wsnet_ext.WSConv1d(1, 16, 64, 8, 1, 2, 32), "sample_stride and channel_repeat are keyword-only"),
    (lambda: wsnet_ext.WSConv2d(64, 128, 3, 2, 4, 1, 1, 1, True), "sample_stride and channel_repeat are keyword-only"),
    (lambda: wsnet_ext.WSLinear(784, 1000, 1, 8), "sample_stride and channel_repeat are keyword-only"),
    (lambda: wsnet_ext.HashedLinear(5, 6, 3, False, 9), "keyword-only argument: .compression."),
    (lambda: wsnet_ext.HashedConv2d(3, 4, 3, 2, 2, 1, False, 7, compression=2), "compression and seed are keyword-only"),
])
def test_a_call_in_the_old_argument_order_fails_naming_the_keywords(call, keyword):
    with pytest.raises((ValueError, TypeError), match=keyword):
        call()


def test_hashed_layers_need_compression_by_keyword():
    with pytest.raises(TypeError, match="compression"):
        wsnet_ext.HashedConv1d(4, 6, 3, 2)


@pytest.mark.parametrize("cls", [wsnet_ext.WSConv1d, wsnet_ext.WSConv2d])
def test_unsupported_conv_options_name_the_argument(cls):
    with pytest.raises(ValueError, match="groups: .* supports only groups=1 .*, got 2"):
        cls(4, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode: .* supports only 'zeros', got 'reflect'"):
        cls(4, 4, 3, padding_mode="reflect")


def test_docstrings_say_what_is_not_supported():
    for cls in (wsnet_ext.WSConv1d, wsnet_ext.WSConv2d, wsnet_ext.HashedConv1d):
        doc = cls.__doc__ or cls.__mro__[1].__doc__
        assert "groups" in doc and "padding_mode" in doc


def whole_model():
    return nn.Sequential(
        wsnet_ext.WSConv1d(2, 8, 5, padding=2, sample_stride=2, channel_repeat=2), nn.ReLU(),
        wsnet_ext.HashedConv1d(8, 8, 3, padding=1, compression=4, seed=3), nn.Flatten(),
        nn.Unflatten(1, (8, 4, 5)),
        wsnet_ext.WSConv2d(8, 6, 3, padding=1, sample_stride=1, channel_repeat=2), nn.ReLU(),
        wsnet_ext.HashedConv2d(6, 4, 3, padding=1, compression=3), nn.Flatten(),
        wsnet_ext.WSLinear(80, 16, sample_stride=3, channel_repeat=4), nn.ReLU(),
        wsnet_ext.HashedLinear(16, 5, compression=2, seed=1))


def test_torch_save_and_load_of_a_whole_model():
    torch.manual_seed(0)
    model = whole_model()
    x = torch.randn(3, 2, 20)
    expected = model(x)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    torch.testing.assert_close(loaded(x), expected)
    # and the state_dict route into a fresh model of different seeds' parameters
    fresh = whole_model()
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(x), expected)
