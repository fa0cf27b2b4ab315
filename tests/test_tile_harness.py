"""benchmarks/tile_harness: the standalone timing of the CPU forward's row-block tile builds, checks
its outputs against the definition and says so, and a wrong variant of the tile fails that check."""

import os
import platform
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "benchmarks", "tile_harness", "run.sh")
TILE = os.path.join("tiles", "cpu", "ws_conv1d_tile_kernels.h")

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                                reason="the row-block tile is built for x86-64 AVX-512 only")


def run(*args):
    result = subprocess.run(["bash", RUN, *args], capture_output=True, text=True, timeout=600)
    if result.returncode == 3 or "has no AVX-512" in result.stderr:
        pytest.skip("this processor has no AVX-512")
    return result


def test_the_tile_matches_the_definition_and_is_timed():
    result = run(os.path.join(ROOT, "csrc"), "3")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["mc 3 n 48 l 24", "mc 16 n 128 l 32"]
    for line in lines:
        assert line.endswith(": ok") and float(line.split("median ")[1].split()[0]) > 0


def test_a_tile_that_drops_the_bias_is_reported_wrong(tmp_path):
    with open(os.path.join(ROOT, "csrc", TILE)) as source:
        text = source.read()
    closing_bias = "const acc_t b = bias ? bias[n_close] : acc_t(0);"
    assert closing_bias in text
    os.makedirs(tmp_path / "tiles" / "cpu")
    (tmp_path / TILE).write_text(text.replace(closing_bias, "const acc_t b = acc_t(0);"))
    result = run(str(tmp_path), "2")
    assert result.returncode != 0 and "WRONG" in result.stdout, result.stdout + result.stderr
