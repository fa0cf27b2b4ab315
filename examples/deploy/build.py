"""Builds run_model (run_model.cpp) against the libtorch of the torch installed in this Python:
torch's headers, linked to libtorch / libtorch_cpu / libc10 with their folder as the run path.
Nothing of Python is linked: the program runs without a Python interpreter.

    python examples/deploy/build.py OUT_EXECUTABLE"""

from __future__ import annotations

import os
import subprocess
import sys

import torch
import torch.utils.cpp_extension as cpp


def command(output: str) -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    includes = [f"-I{path}" for path in cpp.include_paths()]
    abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"
    return (["c++", "-std=c++20", "-O1", abi, os.path.join(here, "run_model.cpp"), "-o", output] + includes
            + [f"-L{lib}", f"-Wl,-rpath,{lib}", "-Wl,--no-as-needed", "-ltorch", "-ltorch_cpu", "-lc10", "-ldl"])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: build.py OUT_EXECUTABLE")
    subprocess.run(command(argv[0]), check=True)
    print(f"built {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
