"""What long training jobs need: autocast, determinism across runs and thread counts, and
torch.compile with the default (inductor) backend over every layer type."""

import pytest
import torch
from torch import nn

import wsnet_ext
from helpers import reference_conv1d


def all_layers_model(dtype=torch.float32):
    return nn.Sequential(
        wsnet_ext.WSConv1d(4, 8, 5, sample_stride=2, channel_repeat=2, padding=2, dtype=dtype), nn.ReLU(),
        wsnet_ext.HashedConv1d(8, 8, 3, compression=4, padding=1, dtype=dtype), nn.ReLU(),
        nn.Unflatten(2, (4, 4)),
        wsnet_ext.WSConv2d(8, 6, 3, sample_stride=1, channel_repeat=2, padding=1, dtype=dtype), nn.ReLU(),
        wsnet_ext.HashedConv2d(6, 4, 3, compression=3, padding=1, dtype=dtype), nn.Flatten(),
        wsnet_ext.WSLinear(64, 16, sample_stride=3, channel_repeat=4, dtype=dtype), nn.ReLU(),
        wsnet_ext.HashedLinear(16, 5, compression=2, dtype=dtype))


def test_compile_inductor_fullgraph_all_layers():
    torch.manual_seed(0)
    model = all_layers_model()
    x = torch.randn(3, 4, 16)
    eager_out = model(x)
    eager_grads = torch.autograd.grad(eager_out.square().sum(), list(model.parameters()))
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
    torch.testing.assert_close(out, eager_out, rtol=1e-4, atol=1e-5)
    for g, e in zip(grads, eager_grads):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)


def test_autocast_cpu_bfloat16_behaves_like_conv1d():
    torch.manual_seed(0)
    layer = wsnet_ext.WSConv1d(8, 12, 5, sample_stride=2, channel_repeat=2, padding=2)
    plain = nn.Conv1d(8, 12, 5, padding=2)
    x = torch.randn(2, 8, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
        y_plain = plain(x)
        y_mixed = layer(y_plain.to(torch.bfloat16)[:, :8])  # a bf16 input meets float32 parameters
    assert y.dtype == y_plain.dtype == torch.bfloat16 and y_mixed.dtype == torch.bfloat16
    expected = reference_conv1d(x.double(), layer.condensed.double(), layer.bias.double(), kernel_size=5,
                                sample_stride=2, channel_repeat=2, padding=2)
    torch.testing.assert_close(y.double(), expected, rtol=2e-2, atol=2e-2)
    y.float().sum().backward()  # gradients reach the float32 parameters
    assert layer.condensed.grad is not None and layer.condensed.grad.dtype == torch.float32


def run_training_step(threads):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        layer = wsnet_ext.WSConv1d(8, 32, 16, sample_stride=2, channel_repeat=2, stride=2, padding=8)
        x = torch.randn(4, 8, 3001, requires_grad=True)
        y = layer(x)
        grads = torch.autograd.grad(y.square().sum(), [x, layer.condensed, layer.bias])
        return [y.detach()] + list(grads)
    finally:
        torch.set_num_threads(previous)


def test_bitwise_deterministic_across_runs_and_thread_counts():
    first = run_training_step(2)
    for result in (run_training_step(2), run_training_step(1)):
        for a, b in zip(first, result):
            assert torch.equal(a, b)


def test_import_under_an_older_torch_names_both_versions(monkeypatch):
    from wsnet_ext import _build
    monkeypatch.setattr(torch, "__version__", "2.9.1+cu128")
    with pytest.raises(ImportError, match=r"needs torch >= 2\.10 \(built against torch 2\..* for that "
                                          r"floor\), but torch 2\.9\.1\+cu128 is installed"):
        _build.check_torch_version()


@pytest.mark.parametrize("version", ["2.10.0", "2.13.0+cpu", "2.99.0a0+git1234", "3.0.0"])
def test_import_under_any_torch_from_the_floor_on(monkeypatch, version):
    from wsnet_ext import _build
    monkeypatch.setattr(torch, "__version__", version)
    _build.check_torch_version()  # the stable ABI: no rebuild needed


def test_build_records_versions():
    info = wsnet_ext.build_info()
    assert info["torch_running"] == torch.__version__
    assert info["torch_floor"] == "2.10"
    built = tuple(int(p) for p in info["torch"].split("+")[0].split(".")[:2])
    assert built >= (2, 10)
    assert info["cuda_kernels"] == (info["cuda"] != "")
    assert info["cuda_loaded"] == (info["cuda_kernels"] and torch.version.cuda is not None
                                   and torch.version.cuda.split(".")[0] == info["cuda"].split(".")[0])
    assert info["cuda_loaded"] == (info["cuda_not_loaded"] == "")