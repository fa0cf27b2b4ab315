"""Every bad argument gets a Python exception naming the argument, the expectation and the value."""

import pytest
import torch

import wsnet_ext

OK = dict(kernel_size=3, sample_stride=2, channel_repeat=2, stride=1, padding=1, dilation=1)


def tensors(batch=2, m=4, t=20, mc=2, lc=3 + 4 * 2, n=5, dtype=torch.float32):
    return torch.randn(batch, m, t, dtype=dtype), torch.randn(mc, lc, dtype=dtype), torch.randn(n, dtype=dtype)


def call(x=None, cond=None, bias=None, **overrides):
    x0, c0, _ = tensors()
    options = {**OK, **overrides}
    return wsnet_ext.ws_conv1d(x0 if x is None else x, c0 if cond is None else cond, bias, **options)


def test_valid_call_works():
    x, cond, bias = tensors()
    assert call(x, cond, bias).shape == (2, 5, 20)


@pytest.mark.parametrize("shape", [(20,), (1, 2, 4, 20)])
def test_wrong_input_rank(shape):
    with pytest.raises(ValueError, match=r"input expects shape \(B, M, T\) or \(M, T\), got"):
        call(torch.randn(*shape))


def test_wrong_condensed_rank():
    with pytest.raises(ValueError, match=r"condensed expects shape \(Mc, Lc\), got \(2, 11, 1\)"):
        call(cond=torch.randn(2, 11, 1))


def test_channels_not_divisible_by_repeat():
    with pytest.raises(ValueError, match="input channels expects a multiple of channel_repeat=2, got 5"):
        call(x=torch.randn(2, 5, 20))


def test_condensed_channels_mismatch():
    with pytest.raises(ValueError, match=r"condensed expects 2 channels .*got shape \(3, 11\)"):
        call(cond=torch.randn(3, 11))


def test_condensed_length_fits_no_whole_n():
    with pytest.raises(ValueError, match="whole N.*kernel_size=3, sample_stride=2.*got length 12"):
        call(cond=torch.randn(2, 12))


def test_condensed_shorter_than_kernel():
    with pytest.raises(ValueError, match="whole N.*got length 2"):
        call(cond=torch.randn(2, 2))


def test_mismatched_dtypes():
    x, cond, _ = tensors()
    with pytest.raises(ValueError, match="condensed expects the dtype of input \\(torch.float32\\), got torch.float64"):
        call(x, cond.double())


def test_mismatched_bias_dtype():
    x, cond, bias = tensors()
    with pytest.raises(ValueError, match="bias expects the dtype of input"):
        call(x, cond, bias.double())


def test_mismatched_devices():
    x, cond, _ = tensors()
    with pytest.raises(ValueError, match="condensed expects the device of input \\(cpu\\), got meta"):
        call(x, cond.to("meta"))


def test_bias_shape():
    with pytest.raises(ValueError, match=r"bias expects shape \(5,\), got \(4,\)"):
        call(bias=torch.randn(4))


@pytest.mark.parametrize("name", ["kernel_size", "sample_stride", "channel_repeat", "stride", "dilation"])
@pytest.mark.parametrize("value", [0, -1])
def test_non_positive_options(name, value):
    with pytest.raises(ValueError, match=f"{name} expects an int >= 1, got {value}"):
        call(**{name: value})


@pytest.mark.parametrize("value", [1.5, "2", True, None])
def test_non_int_options(value):
    with pytest.raises(ValueError, match="stride expects an int >= 1, got"):
        call(stride=value)


def test_negative_padding():
    with pytest.raises(ValueError, match="padding expects an int >= 0, got -1"):
        call(padding=-1)


def test_unknown_padding_string():
    with pytest.raises(ValueError, match="padding expects an int >= 0, 'same' or 'valid', got 'full'"):
        call(padding="full")


def test_same_padding_with_stride():
    with pytest.raises(ValueError, match="padding='same' expects stride=1, got stride=2"):
        call(padding="same", stride=2)


def test_output_length_below_one():
    with pytest.raises(ValueError, match="input expects length >= 5 .*got length 4"):
        call(x=torch.randn(2, 4, 4), padding=0, dilation=2)


@pytest.mark.parametrize("dtype", [torch.int64, torch.complex64, torch.bool])
def test_non_floating_dtype(dtype):
    with pytest.raises(ValueError, match=f"input expects a floating dtype .*got {dtype}"):
        call(x=torch.zeros(2, 4, 20, dtype=dtype))


def test_not_a_tensor():
    with pytest.raises(TypeError, match="input expects a torch.Tensor, got list"):
        call(x=[[1.0]])


def test_direct_op_call_is_checked_too():
    # the registered op checks what its kernels rely on, so torch.ops callers can't crash it; the
    # kernels are built on PyTorch's stable ABI, whose errors reach Python as RuntimeError (the
    # public functions raise ValueError first, tested above)
    x, cond, _ = tensors()
    with pytest.raises(RuntimeError, match="expected condensed length kernel_size"):
        torch.ops.wsnet_ext.ws_conv1d_forward(x, torch.randn(2, 12), None, 3, 2, 2, 1, [1, 1], 1)
    with pytest.raises(RuntimeError, match="expected in_channels = condensed.shape\\[0\\] \\* channel_repeat"):
        torch.ops.wsnet_ext.ws_conv1d_forward(x, cond, None, 3, 2, 3, 1, [1, 1], 1)
    with pytest.raises(RuntimeError, match="expected an output length >= 1"):
        torch.ops.wsnet_ext.ws_conv1d_forward(x[:, :, :1], cond, None, 3, 2, 2, 1, [0, 0], 1)
    with pytest.raises(RuntimeError, match="expected grad_output of shape"):
        torch.ops.wsnet_ext.ws_conv1d_backward(torch.randn(2, 5, 3), x, cond, 3, 2, 2, 1, [1, 1], 1, [True] * 3)


@pytest.mark.parametrize("position,name", [(3, "kernel_size"), (4, "sample_stride"), (6, "stride"),
                                           (8, "dilation")])
def test_direct_op_call_rejects_options_past_2_31(position, name):
    # products of two options (dilation * (kernel_size - 1), ...) must not overflow int64
    x, cond, _ = tensors()
    args = [x, cond, None, 3, 2, 2, 1, [1, 1], 1]
    args[position] = 2 ** 40
    with pytest.raises(RuntimeError, match="< 2\\^31, got"):
        torch.ops.wsnet_ext.ws_conv1d_forward(*args)


def test_direct_op_call_rejects_huge_channel_repeat():
    x, cond, _ = tensors()
    with pytest.raises(RuntimeError, match="< 2\\^31"):
        torch.ops.wsnet_ext.ws_conv1d_forward(x, cond, None, 3, 2, 2 ** 62, 1, [1, 1], 1)
    with pytest.raises(RuntimeError, match="padding \\[left, right\\] in \\[0, 2\\^31\\)"):
        torch.ops.wsnet_ext.ws_conv1d_forward(x, cond, None, 3, 2, 2, 1, [2 ** 62, 0], 1)
    with pytest.raises(RuntimeError, match="< 2\\^31"):
        torch.ops.wsnet_ext.ws_sample_channels(torch.randn(9, 3), 2, 2 ** 40, 1)


def test_sample_weight_checks_length():
    with pytest.raises(ValueError, match="condensed expects length kernel_size \\+ \\(out_channels - 1\\) \\* sample_stride = 11"):
        wsnet_ext.sample_conv1d_weight(torch.randn(2, 10), 5, 3, 2)


@pytest.mark.parametrize("kwargs,message", [
    (dict(in_channels=6, channel_repeat=4), "in_channels expects a multiple of channel_repeat=4, got 6"),
    (dict(out_channels=0), "out_channels expects an int >= 1, got 0"),
    (dict(kernel_size=0), "kernel_size expects an int >= 1, got 0"),
    (dict(padding="same", stride=2), "padding='same' expects stride=1, got stride=2"),
])
def test_module_arguments(kwargs, message):
    args = {**dict(in_channels=4, out_channels=8, kernel_size=3), **kwargs}
    with pytest.raises(ValueError, match=message):
        wsnet_ext.WSConv1d(**args)


def test_fake_kernels_check_shapes_like_the_kernels():
    # under FakeTensorMode (what torch.compile traces with) a bad shape fails as it does eagerly
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        x, cond = torch.empty(2, 4, 30), torch.empty(2, 12)
        with pytest.raises(RuntimeError, match="expected condensed length kernel_size"):
            torch.ops.wsnet_ext.ws_conv1d_forward(x, cond, None, 3, 2, 2, 1, [1, 1], 1)
        with pytest.raises(RuntimeError, match="in_channels = condensed.shape"):
            torch.ops.wsnet_ext.ws_conv1d_forward(x, torch.empty(3, 11), None, 3, 2, 2, 1, [1, 1], 1)
        good = torch.empty(2, 11)
        y = torch.ops.wsnet_ext.ws_conv1d_forward(x, good, None, 3, 2, 2, 1, [1, 1], 1)
        assert tuple(y.shape) == (2, 5, 30)
        with pytest.raises(RuntimeError, match="expected grad_output of shape"):
            torch.ops.wsnet_ext.ws_conv1d_backward(torch.empty(2, 5, 3), x, good, 3, 2, 2, 1, [1, 1], 1, [True] * 3)
        with pytest.raises(RuntimeError, match="expected bias of shape"):
            torch.ops.wsnet_ext.ws_conv1d_forward(x, good, torch.empty(4), 3, 2, 2, 1, [1, 1], 1)
        with pytest.raises(RuntimeError, match="condensed length Mc"):
            torch.ops.wsnet_ext.ws_sample_channels(torch.empty(3, 2), 5, 1, 1)
