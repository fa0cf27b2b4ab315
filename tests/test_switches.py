"""The switches: read once from the environment at import, checked, changed by override()."""

import os
import subprocess
import sys

import pytest
import torch

import wsnet_ext


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True)


def test_environment_is_read_at_import():
    done = run_python("import wsnet_ext; print(wsnet_ext.switches.current())", WSNET_CPU_POLYPHASE="0",
                      WSNET_CPU_ISA="baseline", WSNET_CUDA_FORWARD="tiles")
    assert done.returncode == 0, done.stderr
    current = eval(done.stdout)
    assert current["cpu_polyphase"] == "0" and current["cpu_isa"] == "baseline" and current["cuda_forward"] == "tiles"


def test_a_bad_environment_value_names_the_variable():
    done = run_python("import wsnet_ext", WSNET_CUDA_FORWARD="fastest")
    assert done.returncode != 0
    assert "WSNET_CUDA_FORWARD" in done.stderr and "fastest" in done.stderr and "'lines'" in done.stderr


def test_override_sets_and_restores():
    before = wsnet_ext.switches.current()
    with wsnet_ext.switches.override(cpu_isa="baseline", cpu_polyphase=False, cuda_forward="tiles"):
        assert wsnet_ext.cpu_kernel_isa() == "baseline"
        # read back from every loaded C++ library, not from Python's copy
        for values in wsnet_ext.switches.library_values():
            assert (values["cpu_polyphase"], values["cuda_forward"], values["cpu_isa"]) == ("0", "tiles", "baseline")
    assert wsnet_ext.switches.current() == before
    for values in wsnet_ext.switches.library_values():
        assert all(values[name] == before[name] for name in values)
    assert wsnet_ext.cpu_kernel_isa() != "baseline" or before["cpu_isa"] == "baseline"


@pytest.mark.parametrize("name,value,message", [
    ("cpu_isa", "sse", "cpu_isa expects one of"),
    ("gpu_magic", 1, "switch expects one of"),
    ("cuda_forward", "fastest", "cuda_forward expects one of"),
])
def test_bad_switches_are_refused(name, value, message):
    with pytest.raises(ValueError, match=message):
        wsnet_ext.switches.set(name, value)


def test_strip_kernel_precision_follows_torch_tf32_switch():
    """ws_conv1d tells the CUDA library what torch.backends.cudnn.allow_tf32 is on each eager
    CUDA call (wsnet_ext._switches.follow_torch_tf32); the opt-in kernels' values are accepted."""
    from wsnet_ext import _switches
    before = torch.backends.cudnn.allow_tf32
    try:
        for allowed in (False, True, False):
            torch.backends.cudnn.allow_tf32 = allowed
            _switches.follow_torch_tf32()
            assert wsnet_ext.switches.current()["torch_allow_tf32"] == ("1" if allowed else "0")
    finally:
        torch.backends.cudnn.allow_tf32 = before
        _switches.follow_torch_tf32()
    with wsnet_ext.switches.override(cuda_forward="strips", cuda_adjoint="fused", cuda_tf32="0"):
        assert wsnet_ext.switches.current()["cuda_forward"] == "strips"
    with pytest.raises(ValueError, match="cuda_tf32 expects one of"):
        wsnet_ext.switches.set("cuda_tf32", "maybe")
