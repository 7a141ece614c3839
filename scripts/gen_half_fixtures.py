#!/usr/bin/env python3
"""Generate PyTorch reference values for kiln-core's float16 and bfloat16 support.

Output: crates/kiln-core/tests/fixtures/half.json, read by crates/kiln-core/tests/half.rs.

Every 16-bit value is written as its raw bit pattern (an unsigned int), so NaN payloads, signed
zeros and subnormals are compared exactly, and no decimal round trip can hide a one-ulp
difference. f32 conversion inputs are written as their u32 bit patterns for the same reason; f64
inputs (finite only) as Python floats, whose repr round-trips exactly.

Layout:
  {"torch": version,
   "promote_types": {torch name: {torch name: torch name}},
   "f16" | "bf16": {
     "from_f32": {"in": [u32...], "out": [u16...]},
     "from_f64": {"in": [float...], "out": [u16...]},
     "ops": {name: {"inputs": [{"shape", "bits"}...], "out": {"shape", "bits"}, ...}}}}
  (an op may add "via_f32": torch's f32 result rounded, where kiln is checked against that)

The op inputs are drawn once in float64 from a seeded numpy Generator (one seed per case name)
and rounded to the 16-bit dtype by torch; the op then runs entirely in that dtype on torch's
CPU, which computes each elementwise op in f32 and rounds once.

Run:  /tmp/peers/bin/python scripts/gen_half_fixtures.py
"""
import json
import os
import zlib

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "kiln-core", "tests", "fixtures", "half.json")

DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16}


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def bits16(t):
    return [int(v) & 0xFFFF for v in t.contiguous().view(torch.int16).reshape(-1).tolist()]


def tj(t):
    return {"shape": list(t.shape), "bits": bits16(t)}


def f32_specials():
    """f32 inputs covering every rounding path of both 16-bit formats."""
    vals = [
        0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, 0.1, -0.1, 1.0 / 3.0,
        65504.0, 65519.99, 65520.0, 65536.0, 1e5, -1e5, 3.0e38, -3.0e38,
        2.0 ** -14, 2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.5, 2.0 ** -26, 2.0 ** -15, 2.0 ** -24 * 3.5,
        1e-8, 1e-30, 1e-40, -1e-40, 2.0 ** -126, 2.0 ** -149, 6.1e-5, 5.96e-8,
        # Ties in f16 (10 mantissa bits): 1 + 2^-11 rounds down to 1, 1 + 3*2^-11 up to 1 + 2^-9.
        1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1.0 + 2.0 ** -11 + 2.0 ** -20, 2049.0, 2051.0,
        # Ties in bf16 (7 mantissa bits).
        1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, 1.0 + 2.0 ** -8 + 2.0 ** -20, 257.0, 259.0,
        float("inf"), float("-inf"), 3.4028234663852886e38,
    ]
    b = [int(v) for v in np.array(vals, dtype=np.float32).view(np.uint32)]
    # Quiet NaN, negative NaN and a NaN with a payload.
    b += [0x7FC00000, 0xFFC00000, 0x7F800001 | 0x00400000 | 0x1234]
    rng = rng_for("from_f32")
    wide = rng.standard_normal(200) * np.exp2(rng.integers(-30, 20, 200))
    b += [int(v) for v in wide.astype(np.float32).view(np.uint32)]
    # Random bit patterns hit every exponent, subnormals and NaNs alike.
    b += [int(v) for v in rng.integers(0, 2 ** 32, 300, dtype=np.uint64)]
    return b


def f64_inputs():
    """f64 inputs including values a hair past a 16-bit midpoint: torch converts through f32,
    so the hair (below an f32 ulp) is lost and the midpoint's tie rule decides."""
    vals = [
        1.0 + 2.0 ** -11 + 2.0 ** -40, 1.0 + 2.0 ** -8 + 2.0 ** -40, 1.0 + 2.0 ** -11 - 2.0 ** -40,
        0.1, -0.1, 1e-7, 65504.0, 65520.0, 1e300, -1e300, 1e-300, 2.0 ** -24, 2.0 ** -25,
    ]
    rng = rng_for("from_f64")
    vals += list(rng.standard_normal(100) * np.exp2(rng.integers(-20, 20, 100)))
    return [float(v) for v in vals]


def case(name, dtype, gen, fn, **extra):
    rng = rng_for(name)
    ins = [torch.tensor(a, dtype=torch.float64).to(dtype) for a in gen(rng)]
    out = fn(*ins)
    d = {"inputs": [tj(t) for t in ins], "out": tj(out)}
    d.update(extra)
    return d


def normal(shape, scale=1.0):
    return lambda rng: [rng.standard_normal(shape) * scale]


def pair(sa, sb, positive_b=False):
    def g(rng):
        a = rng.standard_normal(sa) * 3.0
        b = rng.standard_normal(sb) * 3.0
        if positive_b:
            b = np.abs(b) + 0.25
        return [a, b]

    return g


def ops_for(dtype):
    ops = {}
    ops["add"] = case("add", dtype, pair([7, 13], [7, 13]), torch.add)
    ops["add_broadcast"] = case("add_broadcast", dtype, pair([5, 1, 6], [4, 1]), torch.add)
    ops["sub"] = case("sub", dtype, pair([64], [64]), torch.sub)
    ops["mul"] = case("mul", dtype, pair([9, 11], [9, 11]), torch.mul)
    ops["div"] = case("div", dtype, pair([9, 11], [9, 11], positive_b=True), torch.div)
    ops["mul_scalar"] = case("mul_scalar", dtype, normal([40], 4.0), lambda x: x * 0.1, scalar=0.1)
    ops["exp"] = case("exp", dtype, normal([97], 3.0), torch.exp)
    ops["tanh"] = case("tanh", dtype, normal([97], 2.0), torch.tanh)
    ops["sigmoid"] = case("sigmoid", dtype, normal([97], 4.0), torch.sigmoid)
    ops["sqrt"] = case("sqrt", dtype, lambda rng: [np.abs(rng.standard_normal([97])) * 10], torch.sqrt)
    ops["sum_all"] = case("sum_all", dtype, normal([300]), lambda x: x.sum())
    ops["sum_dim"] = case("sum_dim", dtype, normal([6, 50]), lambda x: x.sum(-1))
    ops["sum_dim0"] = case("sum_dim0", dtype, normal([50, 6]), lambda x: x.sum(0))
    ops["mean_all"] = case("mean_all", dtype, normal([300]), lambda x: x.mean())
    ops["mean_dim"] = case("mean_dim", dtype, normal([6, 50]), lambda x: x.mean(-1))
    ops["softmax"] = case("softmax", dtype, normal([8, 33], 3.0), lambda x: torch.softmax(x, -1))
    # torch 2.15's native half log_softmax on CPU is up to ~30 ulps from the exactly rounded value
    # near 0 (-0.017426 for -0.016990); kiln computes it in f32 and rounds once, so it is checked
    # against torch's f32 result rounded ("via_f32"), with the native result kept for reference.
    ops["log_softmax"] = case("log_softmax", dtype, normal([8, 33], 3.0), lambda x: torch.log_softmax(x, -1))
    ins = [torch.tensor(a, dtype=torch.float64).to(dtype) for a in normal([8, 33], 3.0)(rng_for("log_softmax"))]
    ops["log_softmax"]["via_f32"] = tj(torch.log_softmax(ins[0].float(), -1).to(dtype))
    ops["matmul_small"] = case("matmul_small", dtype, pair([5, 7], [7, 3]), torch.matmul)
    ops["matmul"] = case("matmul", dtype, pair([33, 70], [70, 21]), torch.matmul)
    ops["matmul_batched"] = case("matmul_batched", dtype, pair([3, 16, 40], [40, 24]), torch.matmul)
    # Long inner dimension: f32 accumulation matters, the sum would drift in 16 bits.
    ops["matmul_long_k"] = case("matmul_long_k", dtype, pair([4, 1024], [1024, 3]), torch.matmul)
    return ops


def main():
    torch.set_num_threads(1)
    out = {"torch": torch.__version__}
    names = ["float16", "bfloat16", "float32", "float64", "int64", "uint8"]
    out["promote_types"] = {
        a: {b: str(torch.promote_types(getattr(torch, a), getattr(torch, b))).removeprefix("torch.") for b in names}
        for a in names
    }
    f32_in = f32_specials()
    f32_t = torch.tensor(np.array(f32_in, dtype=np.uint32).view(np.int32)).view(torch.float32)
    f64_in = f64_inputs()
    f64_t = torch.tensor(f64_in, dtype=torch.float64)
    for name, dt in DTYPES.items():
        # torch's vectorised copy writes every NaN as 0xFFFF for bf16 (its scalar path writes
        # 0x7FC0), so the tests compare NaNs as NaNs, not by their bits.
        out[name] = {
            "from_f32": {"in": f32_in, "out": bits16(f32_t.to(dt))},
            "from_f64": {"in": f64_in, "out": bits16(f64_t.to(dt))},
            "ops": ops_for(dt),
        }
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
