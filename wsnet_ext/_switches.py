"""The switches of wsnet_ext, in one place. Each is read once, at import, from its environment
variable; tests and benchmarks change them with `wsnet_ext.switches.override(...)`.

| switch | environment variable | values | what it does |
|---|---|---|---|
| cpu_isa | WSNET_CPU_ISA | best (default), avx2, baseline | caps the build of the CPU tile functions (tests run every build) |
| cpu_polyphase | WSNET_CPU_POLYPHASE | 1 (default), 0 | the polyphase split of strided layers on the CPU |
| cpu_huge_pages | WSNET_CPU_HUGE_PAGES | 0 (default), 1 | advises transparent huge pages for large CPU outputs (opt-in: see the README) |
| cuda_forward | WSNET_CUDA_FORWARD | auto (default), lines, stream, tiles, direct, strips, prefer_strips | forces one CUDA forward kernel; a shape it does not fit is an error. `strips` (tensor-core P tiles and register line walkers) is opt-in until a GPU run has passed the CUDA tests and compute-sanitizer on it; `prefer_strips` takes it wherever it fits and the usual pick elsewhere (for whole models) |
| cuda_adjoint | WSNET_CUDA_ADJOINT | auto (default), gather, fused, prefer_fused | gather forces the pointwise CUDA dP kernel; fused the strip backward (dP on chip, no cuBLAS, two launches; opt-in until a GPU run has passed the CUDA tests and compute-sanitizer on it), a shape it does not fit being an error; prefer_fused takes it wherever it fits |
| cuda_tf32 | WSNET_CUDA_TF32 | auto (default), 0, 1 | the strip kernel's precision: auto follows `torch.backends.cudnn.allow_tf32` (conv1d's switch) as `ws_conv1d` reads it on each eager CUDA call; 0 float32-faithful (3xTF32); 1 TF32 |
| torch_allow_tf32 | (none) | 0, 1 (default) | internal: what `ws_conv1d` last read from `torch.backends.cudnn.allow_tf32` |

Build switches (read by setup.py, not here): WSNET_CPU_ONLY, WSNET_FORCE_CUDA, WSNET_SANITIZE,
CUDA_HOME, TORCH_CUDA_ARCH_LIST."""

from __future__ import annotations

import contextlib
import os

# name: (id in csrc/ws_switches.h, environment variable, allowed values in the order of their codes)
SWITCHES = {
    "cpu_isa": (0, "WSNET_CPU_ISA", ("best", "avx2", "baseline")),
    "cpu_polyphase": (1, "WSNET_CPU_POLYPHASE", ("0", "1")),
    "cpu_huge_pages": (2, "WSNET_CPU_HUGE_PAGES", ("0", "1")),
    "cuda_forward": (3, "WSNET_CUDA_FORWARD", ("auto", "lines", "stream", "tiles", "direct", "strips", "prefer_strips")),
    "cuda_adjoint": (4, "WSNET_CUDA_ADJOINT", ("auto", "gather", "fused", "prefer_fused")),
    "cuda_tf32": (5, "WSNET_CUDA_TF32", ("auto", "0", "1")),
    "torch_allow_tf32": (6, None, ("0", "1")),
}
DEFAULTS = {"cpu_isa": "best", "cpu_polyphase": "1", "cpu_huge_pages": "0", "cuda_forward": "auto",
            "cuda_adjoint": "auto", "cuda_tf32": "auto", "torch_allow_tf32": "1"}

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
    for library in _libraries:
        library.set_switch(SWITCHES[name][0], code)
    _current[name] = SWITCHES[name][2][code]


def current() -> dict:
    """{switch: value} as the kernels see them now."""
    return dict(_current)


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
        library.set_switch(SWITCHES[name][0], _code(name, _current[name]))


def follow_torch_tf32() -> None:
    """Tells the CUDA library what torch.backends.cudnn.allow_tf32 is now (called by ws_conv1d on
    eager CUDA calls; a compiled graph keeps what the last eager call saw)."""
    import torch

    allowed = "1" if torch.backends.cudnn.allow_tf32 else "0"
    if _current["torch_allow_tf32"] != allowed:
        set("torch_allow_tf32", allowed)
