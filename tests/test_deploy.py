"""Shipping a WSNet model without Python (examples/deploy/): a trained SoundNet-style WSNet model
(and its 8-bit version) exported with torch.export, compiled by AOTInductor into a .pt2 package,
run by a C++ program that loads only libtorch and wsnet_ext's kernels library, in an environment
without Python's; its output equals eager PyTorch's. The installed-wheel runs of CI copy tests/ and
benchmarks/ only, so there the example is absent and this skips."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import wsnet_ext._build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "deploy")

pytestmark = pytest.mark.skipif(not os.path.isdir(EXAMPLE), reason="examples/deploy is not here (an installed-wheel run)")


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("deploy") / "run_model")
    subprocess.run([sys.executable, os.path.join(EXAMPLE, "build.py"), path], check=True, capture_output=True)
    return path


@pytest.mark.parametrize("quantized", [False, True], ids=["float32", "8-bit"])
def test_cpp_program_runs_the_exported_model_like_eager(program, tmp_path, quantized):
    out = str(tmp_path)
    subprocess.run([sys.executable, os.path.join(EXAMPLE, "export_model.py"), out] + (["--quantized"] if quantized else []),
                   check=True, capture_output=True)
    # no Python anywhere near: an empty environment, the kernels library named by path
    done = subprocess.run([program, wsnet_ext._build._C_PATH, os.path.join(out, "model.pt2"),
                           os.path.join(out, "input"), os.path.join(out, "output")],
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = np.fromfile(os.path.join(out, "output.bin"), dtype=np.float32)
    want = np.fromfile(os.path.join(out, "expected.bin"), dtype=np.float32)
    assert got.shape == want.shape == (10,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert "output [1, 10]" in done.stdout


def test_the_program_links_no_python(program):
    if shutil.which("ldd") is None:
        pytest.skip("no ldd")
    libraries = subprocess.run(["ldd", program], capture_output=True, text=True).stdout
    assert "libpython" not in libraries and "libtorch_python" not in libraries, libraries
