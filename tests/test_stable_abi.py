"""The compiled libraries are built on PyTorch's stable ABI and Python's limited API: one binary for
every torch >= 2.10 and every CPython >= 3.10. These check what makes that true of the files."""

import glob
import os
import shutil
import subprocess

import pytest

import wsnet_ext

PACKAGE = os.path.dirname(wsnet_ext.__file__)
LIBRARIES = sorted(glob.glob(os.path.join(PACKAGE, "_C*.so")))


def test_libraries_are_abi3():
    names = [os.path.basename(path) for path in LIBRARIES]
    assert "_C.abi3.so" in names, names
    assert all(name.endswith(".abi3.so") for name in names), names
    assert ("_C_cuda.abi3.so" in names) == wsnet_ext.cuda_built()


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs binutils' nm")
@pytest.mark.parametrize("library", LIBRARIES, ids=os.path.basename)
def test_libraries_import_no_torch_cpp_symbols(library):
    # a library that imports c10:: / at:: / torch:: C++ symbols loads only on the torch it was built
    # against; the stable ABI's C shims (aoti_torch_*, torch_*) are all it may use
    undefined = subprocess.run(["nm", "-DC", "--undefined-only", library], check=True,
                               capture_output=True, text=True).stdout.splitlines()
    cpp = [line for line in undefined if any(ns in line for ns in ("c10::", "at::", "torch::", "caffe2::"))]
    assert not cpp, cpp[:10]
    python = [line.split()[-1] for line in undefined if " Py" in line or " _Py" in line]
    assert all(not name.startswith("_Py") for name in python), python  # limited API only


@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs binutils' readelf")
@pytest.mark.parametrize("library", LIBRARIES, ids=os.path.basename)
def test_libraries_do_not_need_libtorch_python(library):
    needed = subprocess.run(["readelf", "-d", library], check=True, capture_output=True, text=True).stdout
    assert "libtorch_python" not in needed
