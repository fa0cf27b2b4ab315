"""The base of the WSNet layers: a module that holds a condensed filter, as a parameter, or after
wsnet_ext.quantize_condensed as int8 codes and scales that `condensed` dequantizes on access."""

from __future__ import annotations

from torch import nn


class CondensedHolder(nn.Module):
    def __getattr__(self, name: str):
        if name == "condensed" and "condensed_int8" in self.__dict__.get("_buffers", {}):
            codes, scale = self._buffers["condensed_int8"], self._buffers["condensed_scale"]
            return (codes.to(scale.dtype) * scale).to(self.__dict__.get("condensed_dtype", scale.dtype))
        return super().__getattr__(name)
