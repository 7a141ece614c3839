#!/usr/bin/env python3
"""W6's two convolutions alone in PyTorch (oneDNN on CPU), forward and forward + backward.

Prints the lines `kiln-bench conv` prints, for the same shapes, timing rules and gradients:
input [N, C, H, W] uniform in [0, 1), 3x3 weights and bias uniform in [-0.3, 0.3], padding 1;
forward under no_grad; backward of sum(conv(x)) for the weight, the bias and (conv2 only) the input.
Median microseconds per call over 21 reps (20 forward or 10 forward+backward calls each), after one.

usage: python scripts/conv_shapes_torch.py --threads=1|2
"""
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = [
    ("conv1-64x1x28x28-16", 64, 1, 28, 16, False),
    ("conv2-64x16x14x14-32", 64, 16, 14, 32, True),
]


def median_us(calls, f):
    times = []
    for rep in range(22):
        t = time.perf_counter()
        for _ in range(calls):
            f()
        if rep > 0:
            times.append((time.perf_counter() - t) * 1e6 / calls)
    times.sort()
    return times[len(times) // 2]


def main():
    threads = 1
    for a in sys.argv[1:]:
        if a.startswith("--threads="):
            threads = int(a.split("=", 1)[1])
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    name = "torch-onednn" if torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled else "torch"
    g = torch.Generator().manual_seed(7)
    for label, n, c, hw, o, input_grad in SHAPES:
        x = torch.rand(n, c, hw, hw, generator=g)
        w = (torch.rand(o, c, 3, 3, generator=g) * 0.6 - 0.3).requires_grad_()
        b = (torch.rand(o, generator=g) * 0.6 - 0.3).requires_grad_()
        xg = x.clone().requires_grad_(input_grad)

        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, b, padding=1)

        def fwd_bwd():
            w.grad = b.grad = xg.grad = None
            F.conv2d(xg, w, b, padding=1).sum().backward()

        print(f"{label} {name} {threads} fwd_us {median_us(20, fwd):.6f}", flush=True)
        print(f"{label} {name} {threads} fwd_bwd_us {median_us(10, fwd_bwd):.6f}", flush=True)


if __name__ == "__main__":
    main()
