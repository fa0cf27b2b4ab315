"""Bringing a plain layer's weights into a sampled layer (from_conv / from_linear, wsnetify with
init='project'): the least-squares fit of a condensed filter to a plain weight."""

from __future__ import annotations

import torch


@torch.no_grad()
def project_condensed(condensed: torch.Tensor, sample, weight: torch.Tensor,
                      bias: torch.Tensor | None = None, plain_bias: torch.Tensor | None = None) -> None:
    """Sets `condensed` (in place) to the condensed filter whose sampled weight `sample(condensed)`
    is closest to `weight` in least squares. Every sampled entry reads exactly one condensed entry,
    so the fit is the mean of the plain entries each condensed entry is read by (zero where none);
    the adjoint of the sampling gives those sums and counts. Copies `plain_bias` into `bias`."""
    with torch.enable_grad():
        probe = torch.zeros_like(condensed, requires_grad=True)
        sampled = sample(probe)
        if sampled.shape != weight.shape:
            raise ValueError(f"weight expects the sampled shape {tuple(sampled.shape)}, got {tuple(weight.shape)}")
        sums, = torch.autograd.grad(sampled, probe, weight.to(condensed.dtype), retain_graph=True)
        counts, = torch.autograd.grad(sampled, probe, torch.ones_like(sampled))
    condensed.copy_(torch.where(counts > 0, sums / counts.clamp(min=1), torch.zeros_like(sums)))
    if bias is not None and plain_bias is not None:
        bias.copy_(plain_bias)
