"""gradcheck of ws_conv1d in float64, and torch.library.opcheck of the registered ops."""

import pytest
import torch

import wsnet_ext
from helpers import BACKWARD, FORWARD
from helpers import OP_CONFIGS as CONFIGS
from helpers import op_args as make_args

@pytest.mark.parametrize("config", CONFIGS[:3])
def test_gradcheck(config):
    x, cond, bias, k, s_samp, c, stride, padding, dilation = make_args(config, requires_grad=True)
    def through_layer(*tensors):
        return wsnet_ext.ws_conv1d(tensors[0], tensors[1], tensors[2] if len(tensors) > 2 else None,
                                   kernel_size=k, sample_stride=s_samp, channel_repeat=c,
                                   stride=stride, padding=padding[0], dilation=dilation)

    def through_op(*tensors):  # asymmetric padding is only reachable through the op
        return FORWARD(tensors[0], tensors[1], tensors[2] if len(tensors) > 2 else None, k,
                       s_samp, c, stride, padding, dilation)
    inputs = (x, cond) + ((bias,) if bias is not None else ())
    fn = through_layer if padding[0] == padding[1] else through_op
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("config", CONFIGS)
def test_opcheck_forward(config, requires_grad):
    torch.library.opcheck(FORWARD, make_args(config, requires_grad))


@pytest.mark.parametrize("mask", [[True, True, True], [False, True, False], [True, False, True]])
@pytest.mark.parametrize("config", CONFIGS)
def test_opcheck_backward(config, mask):
    x, cond, bias, k, s_samp, c, stride, padding, dilation = make_args(config)
    y = FORWARD(x, cond, bias, k, s_samp, c, stride, padding, dilation)
    gy = torch.randn_like(y)
    torch.library.opcheck(BACKWARD, (gy, x, cond, k, s_samp, c, stride, padding, dilation, mask))


def test_backward_mask_returns_empty():
    x, cond, bias, k, s_samp, c, stride, padding, dilation = make_args(CONFIGS[0])
    gy = torch.randn_like(FORWARD(x, cond, bias, k, s_samp, c, stride, padding, dilation))
    gx, gc, gb = BACKWARD(gy, x, cond, k, s_samp, c, stride, padding, dilation, [False, True, False])
    assert gx.numel() == 0 and gb.numel() == 0 and gc.shape == cond.shape


def test_compile_fullgraph_matches_eager():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        wsnet_ext.WSConv1d(4, 8, 5, sample_stride=2, channel_repeat=2, stride=2, padding=2, dtype=torch.float64),
        torch.nn.ReLU(),
        wsnet_ext.WSConv1d(8, 6, 3, sample_stride=1, channel_repeat=4, padding="same", dtype=torch.float64))
    x = torch.randn(3, 4, 45, dtype=torch.float64)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    eager_out = model(x)
    eager_grads = torch.autograd.grad(eager_out.sum(), list(model.parameters()))
    compiled_out = compiled(x)
    compiled_grads = torch.autograd.grad(compiled_out.sum(), list(model.parameters()))
    torch.testing.assert_close(compiled_out, eager_out)
    for a, e in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(a, e)
