#!/usr/bin/env python3
"""Generate PyTorch's printed form of tensors, for kiln-core's `Display` (tests/display_summary.rs).

Output: crates/kiln-core/tests/fixtures/display.json, a list of cases
  {"name", "dtype" (kiln's name), "shape", "values": {"data": [...]} or {"arange": [start, step]},
   "expected": str(tensor)}.
Values are built in float64 (the listed data, or start + i * step for element i in row-major
order) and cast to the dtype, in torch as in kiln. Non-finite data is written as the strings
"nan", "inf", "-inf".

Run:  /tmp/peers/bin/python scripts/gen_display_fixtures.py
"""
import json
import math
import os

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "kiln-core", "tests", "fixtures", "display.json")

DTYPES = {
    "f32": torch.float32,
    "f64": torch.float64,
    "f16": torch.float16,
    "bf16": torch.bfloat16,
    "i64": torch.int64,
    "u8": torch.uint8,
}


def enc(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def case(name, dtype, shape, data=None, arange=None):
    n = math.prod(shape)
    if data is not None:
        base = torch.tensor(data, dtype=torch.float64)
        values = {"data": [enc(float(v)) for v in data]}
    else:
        start, step = arange
        base = torch.arange(n, dtype=torch.float64) * step + start
        values = {"arange": [start, step]}
    t = base.reshape(shape).to(DTYPES[dtype])
    return {"name": name, "dtype": dtype, "shape": list(shape), "values": values, "expected": str(t)}


CASES = [
    case("fixed_point", "f32", [2, 2], data=[1.5, -2.0, 3.25, 4.0]),
    case("integers_i64", "i64", [2], data=[1, 20]),
    case("integer_valued_f64", "f64", [2], data=[1.0, 2.0]),
    case("tiny_goes_scientific", "f32", [2], data=[1e-5, 1.0]),
    case("huge_goes_scientific", "f32", [2], data=[1e9, 2.5]),
    case("wide_integers_go_scientific", "f32", [2], data=[1.0, 2000.0]),
    case("nonfinite_fixed_point", "f32", [4], data=[float("nan"), float("inf"), float("-inf"), 1.5]),
    case("nonfinite_integer_valued", "f32", [3], data=[float("nan"), 2.0, float("-inf")]),
    case("nonfinite_scientific", "f64", [3], data=[float("nan"), 1e-7, float("inf")]),
    case("all_zero", "f32", [3], data=[0.0, 0.0, 0.0]),
    case("negative_zero", "f32", [2], data=[-0.0, 1.0]),
    case("scalar_f32", "f32", [], data=[2.5]),
    case("scalar_i64", "i64", [], data=[7]),
    case("scalar_scientific", "f64", [], data=[123456789.0]),
    case("u8", "u8", [2], data=[1, 200]),
    case("f16", "f16", [3], data=[0.1, 1000.0, -2.0]),
    case("bf16", "bf16", [2], data=[0.1, 3.0]),
    case("one_row_wraps_at_80_columns", "f32", [30], arange=[-4.0, 0.37]),
    case("nested_rows_wrap", "f64", [3, 20], arange=[-1.0, 0.125]),
    case("summary_2d_scientific_wrapped", "f32", [40, 50], arange=[0.0, 1.0]),
    case("summary_2d_integers", "i64", [2, 1000], arange=[0.0, 1.0]),
    case("summary_1d", "f64", [1 << 20], arange=[1.0, 0.0]),
    case("summary_3d", "f32", [10, 12, 10], arange=[0.0, 0.01]),
    case("summary_only_long_dims", "f32", [2, 600], arange=[5.0, -0.5]),
]

if __name__ == "__main__":
    with open(OUT, "w") as f:
        json.dump({"generator": "scripts/gen_display_fixtures.py", "torch": torch.__version__, "cases": CASES}, f, indent=1)
        f.write("\n")
    print(f"wrote {len(CASES)} cases to {OUT}")
