"""Step 1 of shipping a WSNet model without Python: train a small SoundNet-style WSNet model for a
few steps, export it with torch.export, compile it with AOTInductor into a .pt2 package, and write
an example input with eager PyTorch's output for it (raw float32, shapes in a text file), which
run_model (main.cpp) reproduces.

    python examples/deploy/export_model.py OUT_DIR [--quantized]

The package calls wsnet_ext's op (wsnet_ext::ws_conv1d_forward) through PyTorch's dispatcher: at
run time the program loads our kernels' library (wsnet_ext/_C.abi3.so), which needs only libtorch."""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F

import wsnet_ext


def write_tensor(path: str, tensor: torch.Tensor) -> None:
    """<path>.bin: the values as float32, row-major; <path>.shape: the sizes, space-separated."""
    tensor = tensor.detach().to(torch.float32).contiguous()
    tensor.numpy().tofile(path + ".bin")
    with open(path + ".shape", "w") as f:
        f.write(" ".join(str(s) for s in tensor.shape) + "\n")


def trained_model(quantized: bool) -> torch.nn.Module:
    """SoundNet at 10x (WSNet, budget by layer size) trained 5 steps on random 0.5 s clips: enough to
    move every weight off its initialisation; then eval mode (batch norm's running statistics)."""
    torch.manual_seed(0)
    model = wsnet_ext.models.soundnet(10, "ws", 10.0, allocate="by_params")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(5):
        x, y = torch.randn(4, 1, 11025), torch.randint(0, 10, (4,))
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    if quantized:
        wsnet_ext.quantize_condensed(model, bits=8)
    return model.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--quantized", action="store_true", help="8-bit condensed filters")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    model = trained_model(args.quantized)
    example = torch.randn(1, 1, 11025, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(example)
        program = torch.export.export(model, (example,))
        package = torch._inductor.aoti_compile_and_package(program, package_path=os.path.join(args.out, "model.pt2"))
    write_tensor(os.path.join(args.out, "input"), example)
    write_tensor(os.path.join(args.out, "expected"), expected)
    print(f"wrote {package}; input and expected output in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
