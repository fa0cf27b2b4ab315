#!/usr/bin/env bash
# Compiles the CUDA kernels of WSConv1d (csrc/cuda/ws_conv1d_{forward,backward}_cuda.cu) for one architecture (no GPU needed) and prints, per kernel, registers,
# stack frame, spills and shared memory (ptxas -v), and per kernel of the strip family whether its machine code
# holds tensor-core instructions (HMMA, in the variants whose last template argument is 1 or 2:
# TF32 / 3xTF32), read with the toolkit's cuobjdump (else the one in the Triton wheel; neither: a problem).
#   bash scripts/cuda_resources.sh [arch, default 90] [python, default python3] [report path]
# Writes the report (default benchmarks/results/cuda_kernels/cuda_resources_sm<arch>.txt) and exits non-zero if a strip kernel
# spills or has a stack frame (per-thread arrays indexed at run time live in local memory, cached in
# L1/L2: the H200 run of 2026-12-04 traced the strip kernels' L2 traffic to it), or an MMA strip
# kernel has no HMMA. Registers are reported, not checked: __launch_bounds__ caps them.
set -uo pipefail
arch=${1:-90}
py=${2:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
cuda_home=${CUDA_HOME:-/usr/local/cuda}
[ -f "$cuda_home/include/cuda_runtime.h" ] || { echo "no CUDA toolkit at $cuda_home" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=$("$py" -c "
import torch.utils.cpp_extension as e, sysconfig
paths = e.include_paths(device_type='cuda') if 'device_type' in e.include_paths.__code__.co_varnames else e.include_paths(cuda=True)
print(' '.join(e.COMMON_NVCC_FLAGS + ['-I' + p for p in paths + [sysconfig.get_paths()['include']]]))")
cuobjdump=$cuda_home/bin/cuobjdump
[ -x "$cuobjdump" ] || cuobjdump=$("$py" -c "import triton, os; print(os.path.join(os.path.dirname(triton.__file__), 'backends/nvidia/bin/cuobjdump'))" 2>/dev/null || true)
[ -x "${cuobjdump:-/nonexistent}" ] || cuobjdump=""
out=${3:-$here/benchmarks/results/cuda_kernels/cuda_resources_sm${arch}.txt}
: > "$work/ptxas.log"
cubins=""
for source in forward backward; do
  # shellcheck disable=SC2086
  "$cuda_home/bin/nvcc" -std=c++20 -O3 -lineinfo -Xptxas -v -cubin -arch=sm_${arch} \
    -DTORCH_TARGET_VERSION=0x020a000000000000 -DUSE_CUDA -I"$here/csrc" $flags \
    -o "$work/$source.cubin" "$here/csrc/cuda/ws_conv1d_${source}_cuda.cu" 2>> "$work/ptxas.log" || {
    grep -v "^ptxas info" "$work/ptxas.log" | head -60 >&2; echo "nvcc failed on $source" >&2; exit 1; }
  cubins="$cubins${cubins:+:}$work/$source.cubin"
done
"$py" - "$work/ptxas.log" "$cubins" "${cuobjdump:-}" "$out" "$arch" <<'EOF'
import re, subprocess, sys
log, cubins, cuobjdump, out, arch = sys.argv[1:6]
text = open(log).read()
demangle = {}
try:
    names = re.findall(r"Compiling entry function '([^']+)'", text)
    shown = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.split("\n")
    demangle = dict(zip(names, shown))
except OSError:
    pass
kernels = {}
current = None
for line in text.splitlines():
    m = re.search(r"Compiling entry function '([^']+)'", line)
    if m:
        current = m.group(1)
        kernels[current] = {"spill_stores": 0, "spill_loads": 0, "registers": None, "smem": 0, "stack": 0}
        continue
    if current is None:
        continue
    m = re.search(r"(\d+) bytes stack frame", line)
    if m:
        kernels[current]["stack"] = int(m.group(1))
    m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
    if m:
        kernels[current]["spill_stores"], kernels[current]["spill_loads"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"Used (\d+) registers", line)
    if m:
        kernels[current]["registers"] = int(m.group(1))
        s = re.search(r"(\d+) bytes smem", line)
        kernels[current]["smem"] = int(s.group(1)) if s else 0
hmma = {}
if cuobjdump:
    sass = "".join(subprocess.run([cuobjdump, "-sass", cubin], capture_output=True, text=True).stdout
                   for cubin in cubins.split(":"))
    current = None
    for line in sass.splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m:
            current = m.group(1)
            hmma[current] = 0
        elif current and "HMMA" in line:
            hmma[current] += 1
rows, problems = [], []
for name, k in kernels.items():
    pretty = demangle.get(name, name)
    short = re.sub(r"wsnet::|\(anonymous namespace\)::|c10::", "", pretty).split("(")[0]
    strip = any(name in pretty for name in ("forward_strip_kernel", "adjoint_strip_kernel", "forward_window_kernel"))
    mma = strip and re.search(r"(forward|adjoint)_strip_kernel<[^,]+, \d+, [12]>", short) is not None
    n_hmma = hmma.get(name)
    rows.append(f"{short:70s} regs {k['registers']!s:>4}  stack {k['stack']:>4}  spill st/ld {k['spill_stores']}/{k['spill_loads']}  "
                f"static smem {k['smem']}  HMMA {n_hmma if n_hmma is not None else '?'}")
    if strip and (k["spill_stores"] or k["spill_loads"]):
        problems.append(f"{short}: spills")
    if k["stack"]:  # every kernel here is hot
        problems.append(f"{short}: {k['stack']}-byte stack frame (local memory)")
    if mma and not n_hmma:
        problems.append(f"{short}: no HMMA in the machine code" if cuobjdump else f"{short}: HMMA not checked (no cuobjdump)")
report = [f"sm_{arch}: {len(kernels)} kernels (ptxas -v; HMMA counted in cuobjdump -sass)"] + sorted(rows)
if not kernels:
    problems.append("no kernels compiled")
report += ["problems: " + ("; ".join(problems) if problems else "none")]
open(out, "w").write("\n".join(report) + "\n")
print("\n".join(report))
sys.exit(1 if problems else 0)
EOF
