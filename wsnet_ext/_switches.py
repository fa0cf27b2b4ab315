"""The switches of wsnet_ext, in one place. Each is read once, at import, from its environment
variable; tests and benchmarks change them with `wsnet_ext.switches.override(...)`.

| switch | environment variable | values | what it does |
|---|---|---|---|
| cpu_isa | WSNET_CPU_ISA | best (default), avx2, baseline | caps the build of the CPU tile functions (tests run every build) |
| cpu_polyphase | WSNET_CPU_POLYPHASE | 1 (default), 0 | the polyphase split of strided layers on the CPU |
| cpu_huge_pages | WSNET_CPU_HUGE_PAGES | 0 (default), 1 | advises transparent huge pages for large CPU outputs (opt-in: see the README) |
| cuda_forward | WSNET_CUDA_FORWARD | auto (default), lines, stream, tiles, direct, strips, prefer_strips | forces one CUDA forward kernel; a shape it does not fit is an error. `strips` (tensor-core P tiles and register line walkers) is opt-in until a GPU run has passed the CUDA tests and compute-sanitizer on it; `prefer_strips` takes it wherever it fits and the usual pick elsewhere (for whole models) |
| cuda_adjoint | WSNET_CUDA_ADJOINT | auto (default), gather, fused, prefer_fused | gather forces the pointwise CUDA dP kernel; fused the strip backward (dP on chip, no cuBLAS, two launches; opt-in until a GPU run has passed the CUDA tests and compute-sanitizer on it), a shape it does not fit being an error; prefer_fused takes it wherever it fits |
| cuda_tf32 | WSNET_CUDA_TF32 | auto (default), 0, 1 | the strip kernel's precision: auto follows PyTorch's TF32 intent for cuDNN convolutions (`torch.backends.cudnn.conv.fp32_precision`, or the legacy `allow_tf32` on older torch) as `ws_conv1d` reads it on each eager CUDA call; 0 float32-faithful (3xTF32); 1 TF32 |
| torch_allow_tf32 | (none) | 0, 1 (default) | internal: what `ws_conv1d` last read of that intent |
| cuda_path | WSNET_CUDA_PATH | auto (default), kernels, materialized | on CUDA, which path computes `ws_conv1d` (wsnet_ext/paths.py): auto picks per shape and direction between our kernels and the materialized filter on cuDNN (measured rule, or timing when `torch.backends.cudnn.benchmark` is on); kernels and materialized force one. Forcing a kernel with cuda_forward / cuda_adjoint puts that direction on our kernels. Python only: the C++ libraries never see it |

Build switches (read by setup.py, not here): WSNET_CPU_ONLY, WSNET_FORCE_CUDA, WSNET_SANITIZE,
CUDA_HOME, TORCH_CUDA_ARCH_LIST."""

from __future__ import annotations

import contextlib
import os

# name: (id in csrc/common/ws_switches.h, environment variable, allowed values in the order of their codes)
SWITCHES = {
    "cpu_isa": (0, "WSNET_CPU_ISA", ("best", "avx2", "baseline")),
    "cpu_polyphase": (1, "WSNET_CPU_POLYPHASE", ("0", "1")),
    "cpu_huge_pages": (2, "WSNET_CPU_HUGE_PAGES", ("0", "1")),
    "cuda_forward": (3, "WSNET_CUDA_FORWARD", ("auto", "lines", "stream", "tiles", "direct", "strips", "prefer_strips")),
    "cuda_adjoint": (4, "WSNET_CUDA_ADJOINT", ("auto", "gather", "fused", "prefer_fused")),
    "cuda_tf32": (5, "WSNET_CUDA_TF32", ("auto", "0", "1")),
    "torch_allow_tf32": (6, None, ("0", "1")),
    "cuda_path": (None, "WSNET_CUDA_PATH", ("auto", "kernels", "materialized")),  # Python only
}
DEFAULTS = {"cpu_isa": "best", "cpu_polyphase": "1", "cpu_huge_pages": "0", "cuda_forward": "auto",
            "cuda_adjoint": "auto", "cuda_tf32": "auto", "torch_allow_tf32": "1", "cuda_path": "auto"}

_libraries: list = []  # the loaded libraries' modules (each keeps its own copy of the values)
_current = dict(DEFAULTS)


def _code(name: str, value) -> int:
    if name not in SWITCHES:
        raise ValueError(f"switch expects one of {sorted(SWITCHES)}, got {name!r}")
    allowed = SWITCHES[name][2]
    text = str(int(value)) if isinstance(value, bool) else str(value)
    if text not in allowed:
        raise ValueError(f"{name} expects one of {allowed}, got {value!r}")
    return allowed.index(text)


def set(name: str, value) -> None:  # noqa: A001  (wsnet_ext.switches.set)
    """Sets a switch in every loaded library (bools are taken as '1' / '0')."""
    code = _code(name, value)
    if SWITCHES[name][0] is not None:
        for library in _libraries:
            library.set_switch(SWITCHES[name][0], code)
    _current[name] = SWITCHES[name][2][code]


def current() -> dict:
    """{switch: value} as set now (library_values() reads what the C++ libraries hold)."""
    return dict(_current)


def library_values() -> list[dict]:
    """{switch: value} as each loaded C++ library holds it, read back from the library (the
    Python-only switches left out)."""
    return [{name: allowed[library.get_switch(ident)] for name, (ident, _, allowed) in SWITCHES.items()
             if ident is not None} for library in _libraries]


@contextlib.contextmanager
def override(**values):
    """with wsnet_ext.switches.override(cpu_polyphase=0): ... — restores the previous values."""
    previous = current()
    try:
        for name, value in values.items():
            set(name, value)
        yield
    finally:
        for name in values:
            set(name, previous[name])


def attach(library) -> None:
    """Called once per loaded library: applies the environment (read here, once) and the
    current values to it."""
    _libraries.append(library)
    for name, (_, variable, _allowed) in SWITCHES.items():
        if variable and variable in os.environ and _current[name] == DEFAULTS[name]:
            try:
                _current[name] = SWITCHES[name][2][_code(name, os.environ[variable])]
            except ValueError as error:
                raise ValueError(f"environment variable {variable}: {error}") from None
        if SWITCHES[name][0] is not None:
            library.set_switch(SWITCHES[name][0], _code(name, _current[name]))


def torch_conv_tf32() -> bool:
    """PyTorch's TF32 intent for cuDNN convolutions, through the current API where it exists:
    `torch.backends.cudnn.conv.fp32_precision`, where "none" defers to `torch.backends.cudnn`'s
    and then to `torch.backends`' own setting ("none" all the way: IEEE float32). On older torch,
    the legacy `torch.backends.cudnn.allow_tf32`. Never the legacy getter on new torch: it warns,
    and raises when conv and rnn precisions were set differently."""
    import torch

    backends = torch.backends
    conv = getattr(backends.cudnn, "conv", None)
    if conv is None or not hasattr(conv, "fp32_precision"):
        return bool(backends.cudnn.allow_tf32)
    for holder in (conv, backends.cudnn, backends):
        value = getattr(holder, "fp32_precision", "none")
        if value != "none":
            return value == "tf32"
    return False


def follow_torch_tf32() -> None:
    """Tells the CUDA library whether PyTorch allows TF32 in cuDNN convolutions now (called by
    ws_conv1d on eager CUDA calls; a compiled graph keeps what the last eager call saw)."""
    allowed = "1" if torch_conv_tf32() else "0"
    if _current["torch_allow_tf32"] != allowed:
        set("torch_allow_tf32", allowed)
