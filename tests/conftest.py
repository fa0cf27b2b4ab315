"""pytest fixtures; the shared helpers live in tests/helpers.py."""

import pytest

import wsnet_ext


@pytest.fixture
def our_cuda_kernels():
    """CUDA tests of our kernels: both directions on them (cuda_path=kernels), not on whatever the
    path rule picks for the shape (tests/test_cuda_paths.py tests auto and every path)."""
    with wsnet_ext.switches.override(cuda_path="kernels"):
        yield
