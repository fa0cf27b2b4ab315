"""quantize_condensed: 8-bit (and fewer) condensed filters, checked against the float model and
by the bytes they save."""

import io

import pytest
import torch
from torch import nn

import wsnet_ext


def ws_model():
    return nn.Sequential(
        wsnet_ext.WSConv1d(4, 16, 9, padding=4, sample_stride=2, channel_repeat=2), nn.ReLU(),
        nn.Flatten(), nn.Unflatten(1, (16, 6, 5)),
        wsnet_ext.WSConv2d(16, 8, 3, padding=1, sample_stride=2, channel_repeat=4), nn.ReLU(), nn.Flatten(),
        wsnet_ext.WSLinear(240, 10, sample_stride=3, channel_repeat=4))


@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_model_matches_its_codes_and_stays_close(bits):
    torch.manual_seed(0)
    model = ws_model()
    x = torch.randn(3, 4, 30)
    reference = model(x)
    condensed = [layer.condensed.detach().clone() for layer in model if isinstance(layer, wsnet_ext.convert.WS_TYPES)]
    assert wsnet_ext.quantize_condensed(model, bits=bits) is model
    levels = 2 ** (bits - 1) - 1
    for layer, original in zip([m for m in model if isinstance(m, wsnet_ext.convert.WS_TYPES)], condensed):
        codes, scale = layer.condensed_int8, layer.condensed_scale
        assert codes.dtype == torch.int8 and codes.abs().max() <= levels
        assert "condensed" not in dict(layer.named_parameters())
        # the dequantized filter is the codes times the per-channel scale, within half a step
        assert torch.equal(layer.condensed, codes.float() * scale)
        assert ((layer.condensed - original).abs() <= scale / 2 + 1e-7).all()
    quantized = model(x)
    error = (quantized - reference).abs().max() / reference.abs().max()
    assert error < (0.02 if bits == 8 else 0.3), error


def test_saved_model_is_that_much_smaller():
    torch.manual_seed(0)
    big = nn.Sequential(wsnet_ext.WSConv1d(256, 512, 16, sample_stride=1, channel_repeat=1, bias=False))
    plain_bytes = 512 * 256 * 16 * 4
    before = wsnet_ext.model_bytes(big)
    assert before == 256 * (16 + 511) * 4
    wsnet_ext.quantize_condensed(big)
    after = wsnet_ext.model_bytes(big)
    assert after == 256 * (16 + 511) * 1 + 256 * 4  # codes + one float scale per condensed channel
    buffer = io.BytesIO()
    torch.save(big.state_dict(), buffer)
    assert buffer.tell() < 0.3 * before + 4096
    assert plain_bytes / after > 4 * (plain_bytes / before) * 0.9  # the sampling's ratio, about 4x more
    # a quantized state_dict loads into a fresh model quantized the same way
    fresh = wsnet_ext.quantize_condensed(nn.Sequential(wsnet_ext.WSConv1d(256, 512, 16, bias=False)))
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer))
    x = torch.randn(1, 256, 40)
    torch.testing.assert_close(fresh(x), big(x))


def test_bad_bits():
    with pytest.raises(ValueError, match="bits expects an int in \\[2, 8\\], got 16"):
        wsnet_ext.quantize_condensed(ws_model(), bits=16)
