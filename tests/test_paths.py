"""The CUDA path choice (wsnet_ext/paths.py) and the materialized / mixed paths it runs
(wsnet_ext/_materialized.py), on the CPU: the rule against the measured table, the switches, the
timing cache, explain(), PyTorch's TF32 intent, and every mix of our kernels and the framework's
convolution against the definition."""

import warnings

import pytest
import torch

import wsnet_ext
from wsnet_ext import _materialized, _switches, paths
from helpers import TRAINING, assert_close_scaled, reference_conv1d, reference_weight



def cuda_call(name, tf32=True, dtype=torch.float32, batch=64, length=None):
    m, n, k, s_, c, stride, pad, t = TRAINING[name]
    return paths.Conv1dCall("cuda", 0, dtype, tf32, batch, m, n, length or t, k, s_, c, stride, (pad, pad), 1)


# Read off ../shared/gpu-runs/2026-12-04/training_protocol_default_kernels.md by hand: where our
# default kernels were >= 1.05x faster than cuDNN without TF32 (forward; backward = fwd+bwd - fwd).
EXPECTED_NO_TF32 = {
    "conv1": ("cudnn", "cudnn"), "conv2": ("kernels", "kernels"), "conv3": ("cudnn", "kernels"),
    "conv4": ("cudnn", "cudnn"), "conv5": ("kernels", "cudnn"), "conv6": ("kernels", "cudnn"),
    "conv7": ("kernels", "cudnn"), "long": ("kernels", "kernels"),
}


@pytest.mark.parametrize("name", sorted(TRAINING))
def test_rule_follows_the_measured_table(name):
    # with TF32 (PyTorch's default for cuDNN convolutions) cuDNN beat our default kernels everywhere
    choice = paths.choose(cuda_call(name, tf32=True))
    assert (choice.forward, choice.backward) == ("cudnn", "cudnn"), choice
    assert "measured" in choice.reason
    choice = paths.choose(cuda_call(name, tf32=False))
    assert (choice.forward, choice.backward) == EXPECTED_NO_TF32[name], choice
    # batch and length do not change the layer's entry
    assert paths.choose(cuda_call(name, tf32=False, batch=3, length=1000)) == choice


def test_rule_outside_the_table():
    wide = paths.Conv1dCall("cuda", 0, torch.float32, False, 8, 64, 256, 4000, 64, 2, 8, 1, (32, 32), 1)
    assert wide.flop_ratio() > paths.RATIO_FOR_KERNELS
    assert (paths.choose(wide).forward, paths.choose(wide).backward) == ("kernels", "kernels")
    with_tf32 = paths.Conv1dCall("cuda", 0, torch.float32, True, 8, 64, 256, 4000, 64, 2, 8, 1, (32, 32), 1)
    assert paths.choose(with_tf32).forward == "cudnn"
    narrow = paths.Conv1dCall("cuda", 0, torch.float32, False, 8, 8, 16, 4000, 3, 1, 1, 1, (1, 1), 1)
    assert narrow.flop_ratio() < paths.RATIO_FOR_KERNELS and paths.choose(narrow).forward == "cudnn"
    for half in (torch.float16, torch.bfloat16):
        assert paths.choose(cuda_call("long", tf32=False, dtype=half)).forward == "cudnn"
    assert paths.choose(cuda_call("conv3", dtype=torch.float64)).forward == "kernels"
    cpu = paths.Conv1dCall("cpu", None, torch.float32, False, 8, 8, 16, 4000, 3, 1, 1, 1, (1, 1), 1)
    assert (paths.choose(cpu).forward, paths.choose(cpu).backward) == ("kernels", "kernels")


def test_switches_force_paths():
    call = cuda_call("conv3", tf32=True)
    with wsnet_ext.switches.override(cuda_path="kernels"):
        assert (paths.choose(call).forward, paths.choose(call).backward) == ("kernels", "kernels")
    with wsnet_ext.switches.override(cuda_path="materialized"):
        assert (paths.choose(call).forward, paths.choose(call).backward) == ("cudnn", "cudnn")
    with wsnet_ext.switches.override(cuda_forward="lines"):
        assert (paths.choose(call).forward, paths.choose(call).backward) == ("kernels", "cudnn")
    with wsnet_ext.switches.override(cuda_adjoint="gather"):
        assert (paths.choose(call).forward, paths.choose(call).backward) == ("cudnn", "kernels")
    with pytest.raises(ValueError, match="cuda_path expects one of"):
        wsnet_ext.switches.set("cuda_path", "fastest")


def test_timing_picks_the_faster_direction_and_caches_it(monkeypatch):
    """time_paths on CPU tensors with a fake timer: ours fast forward, slow backward."""
    torch.manual_seed(0)
    x, cond, bias = torch.randn(2, 4, 40), torch.randn(2, 3 + 4 * 2), torch.randn(5)
    options = (3, 2, 2, 1, [1, 1], 1)
    call = paths.Conv1dCall("cuda", 0, torch.float32, True, 2, 4, 5, 40, 3, 2, 2, 1, (1, 1), 1)
    fake = iter([1.0, 2.0, 3.0, 1.0])  # ours fwd, cuDNN fwd, ours bwd, cuDNN bwd (ms)
    paths.forget_timings()
    try:
        choice = paths.time_paths(call, x, cond, bias, options, timer=lambda fn: (fn(), next(fake))[1])
        assert (choice.forward, choice.backward) == ("kernels", "cudnn") and "timed" in choice.reason
        assert paths.choose(call) == choice  # cached for the process
        monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
        assert not paths.should_time(call)  # already timed
        other = cuda_call("conv3")
        assert paths.should_time(other)
        with wsnet_ext.switches.override(cuda_path="kernels"):
            assert not paths.should_time(other)
        monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
        assert not paths.should_time(other)
    finally:
        paths.forget_timings()
    assert paths.choose(call) != choice


def reference(x, cond, bias, k, s_, c, stride, pads, d):
    xp = torch.nn.functional.pad(x, pads)
    return reference_conv1d(xp, cond, bias, kernel_size=k, sample_stride=s_, channel_repeat=c, stride=stride,
                            dilation=d)


MIXES = [("kernels", "cudnn"), ("cudnn", "kernels"), ("cudnn", "cudnn")]
# (B, M, T, L, S, C, stride, pads, dilation, bias): odd sizes, asymmetric 'same' padding, repeats
CASES = [(3, 6, 37, 4, 3, 2, 1, (1, 2), 1, True), (2, 1, 50, 7, 2, 1, 3, (3, 3), 2, True),
         (1, 8, 19, 5, 1, 4, 2, (0, 0), 1, False), (2, 9, 23, 3, 5, 3, 1, (2, 2), 3, True)]


@pytest.mark.parametrize("mix", MIXES, ids="-".join)
@pytest.mark.parametrize("case", CASES)
def test_every_mix_matches_the_definition(mix, case):
    b, m, t, k, s_, c, stride, pads, d, has_bias = case
    n = 5
    g = torch.Generator().manual_seed(hash(case) % 1000)
    x = torch.randn(b, m, t, generator=g, dtype=torch.float64)
    cond = torch.randn(m // c, k + (n - 1) * s_, generator=g, dtype=torch.float64)
    bias = torch.randn(n, generator=g, dtype=torch.float64) + 1.0 if has_bias else None
    gy = torch.randn(b, n, (t + pads[0] + pads[1] - d * (k - 1) - 1) // stride + 1, generator=g, dtype=torch.float64)
    leaves = [v.clone().requires_grad_() for v in (x, cond, bias) if v is not None]
    expected = reference(*leaves[:2], leaves[2] if has_bias else None, k, s_, c, stride, pads, d)
    expected_grads = torch.autograd.grad(expected, leaves, gy)
    for dtype in (torch.float64, torch.float32):
        mine = [v.detach().to(dtype).requires_grad_() for v in leaves]
        y = _materialized.run(mine[0], mine[1], mine[2] if has_bias else None, (k, s_, c, stride, list(pads), d), *mix)
        grads = torch.autograd.grad(y, mine, gy.to(dtype))
        assert_close_scaled(y, expected, dtype)
        for got, want in zip(grads, expected_grads):
            assert_close_scaled(got, want, dtype)


@pytest.mark.parametrize("mix", MIXES[:2], ids="-".join)
def test_mixes_have_exact_second_derivatives(mix):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 13, generator=g, dtype=torch.float64, requires_grad=True)
    cond = torch.randn(2, 3 + 3 * 2, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    fn = lambda *a: _materialized.run(*a, (3, 2, 2, 2, [1, 2], 1), *mix)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, cond, bias))
    assert torch.autograd.gradgradcheck(fn, (x, cond, bias))


def test_mixes_are_deterministic_and_compile():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 31, generator=g)
    cond = torch.randn(2, 5 + 7 * 3, generator=g)
    bias = torch.randn(8, generator=g)
    options = (5, 3, 2, 1, [2, 2], 1)

    def step(fwd, bwd):
        leaves = [v.clone().requires_grad_() for v in (x, cond, bias)]
        y = _materialized.run(*leaves, options, fwd, bwd)
        y.square().sum().backward()
        return [y.detach()] + [v.grad for v in leaves]
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        for mix in MIXES:
            first, second = step(*mix), step(*mix)
            assert all(torch.equal(a, b) for a, b in zip(first, second))
    finally:
        torch.use_deterministic_algorithms(previous)
    eager = step("kernels", "cudnn")
    compiled = torch.compile(lambda *a: _materialized.run(*a, options, "kernels", "cudnn"), fullgraph=True)
    leaves = [v.clone().requires_grad_() for v in (x, cond, bias)]
    y = compiled(*leaves)
    y.square().sum().backward()
    for got, want in zip([y.detach()] + [v.grad for v in leaves], eager):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
def test_sampled_weight_and_its_adjoint(dtype):
    """sample_conv1d_weight against the slice-by-slice definition; condensed_grad is its adjoint
    (<W(c), G> = <c, W^T(G)>) and equals autograd's."""
    g = torch.Generator().manual_seed(5)
    cond = torch.randn(3, 6 + 4 * 3, generator=g).to(dtype)
    weight = wsnet_ext.sample_conv1d_weight(cond, 5, 6, 3, 2)
    assert torch.equal(weight, reference_weight(cond, 5, 6, 3, 2))
    grad_w = torch.randn(5, 6, 6, generator=g, dtype=torch.float64)
    grad_c = _materialized.condensed_grad(grad_w, 3, cond.shape[1], 3)
    c64 = cond.double().requires_grad_()
    (auto,) = torch.autograd.grad(reference_weight(c64, 5, 6, 3, 2), c64, grad_w)
    torch.testing.assert_close(grad_c, auto)


def test_explain_reports_every_layer():
    model = wsnet_ext.models.soundnet(10, "ws", 10.0, allocate="uniform").eval()
    reports = wsnet_ext.explain(model, torch.randn(2, 1, 4000), device="cuda")
    assert len(reports) == 7 and all(r.call.device_type == "cuda" for r in reports)
    assert all(r.choice == paths.choose(r.call) for r in reports)
    assert "forward" in str(reports[0]) and reports[0].call.in_channels == 1
    cpu = wsnet_ext.explain(model, torch.randn(1, 1, 4000))
    assert all((r.choice.forward, r.choice.backward) == ("kernels", "kernels") for r in cpu)
    model.train()  # no side effects on a training model: running statistics and modes kept
    stats = [b.running_mean.clone() for b in model.modules() if isinstance(b, torch.nn.BatchNorm1d)]
    assert len(wsnet_ext.explain(model, torch.randn(1, 1, 4000))) == 7 and model.training
    after = [b.running_mean for b in model.modules() if isinstance(b, torch.nn.BatchNorm1d)]
    assert all(torch.equal(a, b) for a, b in zip(stats, after))


@pytest.fixture
def tf32_state():
    cudnn = torch.backends.cudnn
    saved = (cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision, cudnn.fp32_precision, torch.backends.fp32_precision)
    yield
    torch.backends.fp32_precision = saved[3]
    cudnn.fp32_precision = saved[2]
    cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision = saved[0], saved[1]


@pytest.mark.skipif(not hasattr(torch.backends.cudnn, "conv"), reason="torch without the fp32_precision API")
def test_tf32_intent_reads_the_current_api_without_warnings(tf32_state):
    cudnn = torch.backends.cudnn
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a deprecation warning would fail here
        cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision = "ieee", "tf32"  # differ: the legacy getter raises
        with pytest.raises(RuntimeError):
            cudnn.allow_tf32  # noqa: B018  (what the old code read)
        assert _switches.torch_conv_tf32() is False
        _switches.follow_torch_tf32()
        assert all(values["torch_allow_tf32"] == "0" for values in _switches.library_values())
        cudnn.conv.fp32_precision, cudnn.rnn.fp32_precision = "tf32", "ieee"
        assert _switches.torch_conv_tf32() is True
        _switches.follow_torch_tf32()
        assert all(values["torch_allow_tf32"] == "1" for values in _switches.library_values())
        cudnn.conv.fp32_precision = "none"  # defers to cudnn, then to torch.backends
        cudnn.fp32_precision = "tf32"
        assert _switches.torch_conv_tf32() is True
        cudnn.fp32_precision = "none"
        torch.backends.fp32_precision = "none"
        assert _switches.torch_conv_tf32() is False


def test_tf32_intent_follows_the_legacy_setter(tf32_state):
    for allowed in (False, True):
        torch.backends.cudnn.allow_tf32 = allowed
        assert _switches.torch_conv_tf32() is allowed


def test_the_choice_traces_under_compile(monkeypatch):
    """On CUDA the choice runs while torch.compile traces ws_conv1d: it must be traceable (no
    torch.backends reads, which dynamo refuses) and give the eager choice."""
    def pick(x):
        call = paths.Conv1dCall("cuda", 0, x.dtype, _switches.current()["torch_allow_tf32"] == "1", x.shape[0],
                                x.shape[1], 128, x.shape[2], 32, 4, 4, 1, (16, 16), 1)  # `long`
        choice = paths.choose(call)
        return x * (1.0 if choice.forward == "kernels" else 2.0) + (3.0 if paths.should_time(call) else 0.0)
    x = torch.ones(2, 64, 50)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    for allowed in ("0", "1"):
        with wsnet_ext.switches.override(torch_allow_tf32=allowed):
            torch._dynamo.reset()
            assert torch.equal(torch.compile(pick, fullgraph=True)(x), pick(x))
            assert pick(x)[0, 0, 0].item() == (1.0 if allowed == "0" else 2.0)
