#!/usr/bin/env python3
"""W5's eight matrix products alone in PyTorch (MKL on CPU), with the operand layouts of the step.

Prints the lines `kiln-bench mlp` prints, for the same shapes and layouts: a transposed operand is
the `.t()` view of a row-major tensor, as `nn.Linear`'s `x @ W.t()` and its weight gradient
`dZ.t() @ x` give them. Operands uniform in [-1, 1). Median microseconds per call over 21 reps of
enough calls for about 20 ms each, after one.

usage: python scripts/mlp_shapes_torch.py --threads=1|2
"""
import sys
import time

import torch

PRODUCTS = [
    ("fwd1-x.w1t", 128, 784, 512, False, True),
    ("fwd2-h1.w2t", 128, 512, 512, False, True),
    ("fwd3-h2.w3t", 128, 512, 10, False, True),
    ("dh2-dz3.w3", 128, 10, 512, False, False),
    ("dw3-dz3t.h2", 10, 128, 512, True, False),
    ("dh1-dz2.w2", 128, 512, 512, False, False),
    ("dw2-dz2t.h1", 512, 128, 512, True, False),
    ("dw1-dz1t.x", 512, 128, 784, True, False),
]


def median_time(reps, f):
    times = []
    for rep in range(reps + 1):
        t = time.perf_counter()
        f()
        if rep > 0:
            times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def main():
    threads = 1
    for a in sys.argv[1:]:
        if a.startswith("--threads="):
            threads = int(a.split("=", 1)[1])
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    g = torch.Generator().manual_seed(3)

    def operand(rows, cols, transposed):
        if transposed:
            return (torch.rand(cols, rows, generator=g) * 2 - 1).t()
        return torch.rand(rows, cols, generator=g) * 2 - 1

    total = 0.0
    with torch.no_grad():
        for name, m, k, n, a_t, b_t in PRODUCTS:
            a, b = operand(m, k, a_t), operand(k, n, b_t)
            t1 = median_time(5, lambda: torch.matmul(a, b))
            calls = max(1, min(10000, int(0.02 / max(t1, 1e-7))))

            def rep():
                for _ in range(calls):
                    torch.matmul(a, b)

            t = median_time(21, rep) / calls
            total += t * 1e6
            print(f"{name} torch {threads} us {t * 1e6:.6f}")
            print(f"{name} torch {threads} gflops {2 * m * k * n / t / 1e9:.6f}")
    print(f"w5-products torch {threads} total_us {total:.6f}")


if __name__ == "__main__":
    main()
