#!/usr/bin/env python3
"""Generate PyTorch reference values for kiln-core's ops.

Output: crates/kiln-core/tests/fixtures/ops.json (see scripts/README.md for the format), and
crates/kiln-core/tests/fixtures/edges.json (gradients at domain edges: NaN, infinities, ties and
clamp bounds; non-finite floats written as strings, see the "edges" section below).

Every case is produced twice, in float64 and float32. Inputs are drawn once in float64 from a
seeded numpy Generator (one seed per case name, so adding cases does not disturb others) and
rounded to float32 for the f32 variant; the f32 case is then computed entirely in torch float32.
Float values are written as Python floats (repr = shortest round-trip string of the double); for
f32 cases each value is the exact f32 value widened to double, so parsing to f64 and casting to
f32 is lossless.

Run:  /tmp/peers/bin/python scripts/gen_core_fixtures.py [ops] [more] [edges] [more2]
(no argument: every file; naming parts rewrites only those files).
"""
import json
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "kiln-core", "tests", "fixtures", "ops.json")

DTYPES = {"f64": torch.float64, "f32": torch.float32}


def rng_for(name):
    # Stable per-case seed (crc32 of the dtype-less case name).
    return np.random.default_rng(zlib.crc32(name.encode()))


def tj(t):
    """Tensor -> {"shape", "data"} (row-major). Floats as Python floats, bool/int as ints."""
    t = t.detach()
    if t.dtype == torch.bool:
        data = [int(v) for v in t.reshape(-1).tolist()]
    elif t.dtype in (torch.int64, torch.int32):
        data = [int(v) for v in t.reshape(-1).tolist()]
    else:
        data = [float(v) for v in t.reshape(-1).tolist()]
    return {"shape": list(t.shape), "data": data}


def aj(a):
    """numpy int/bool array -> {"shape", "data"}."""
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": [int(v) for v in a.reshape(-1).tolist()]}


# ------------------------------------------------------------------ input generators (float64 numpy)
def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def away_from(rng, shape, kinks, margin=0.05, scale=1.0):
    """Normal values with |x - k| > margin for every kink k."""
    x = rng.standard_normal(shape) * scale
    for _ in range(1000):
        bad = np.zeros(x.shape, dtype=bool)
        for k in kinks:
            bad |= np.abs(x - k) <= margin
        if not bad.any():
            return x
        x[bad] = rng.standard_normal(int(bad.sum())) * scale
    raise RuntimeError("could not avoid kinks")


def int_valued(rng, shape, lo=-2, hi=2):
    return rng.integers(lo, hi + 1, shape).astype(np.float64)


CASES = []


def add_case(name, op, inputs_np, fn, args=None, grad=True, out_dtype=None, float_input_mask=None):
    """Register a case for both dtypes.

    inputs_np: list of float64 numpy arrays (floating inputs of the op, in kiln argument order).
    fn(list_of_torch_tensors) -> output tensor.
    """
    for dt_name, dt in DTYPES.items():
        rng = rng_for(name + "|grad")
        xs = [torch.tensor(np.asarray(a, dtype=np.float64), dtype=dt).requires_grad_(grad) for a in inputs_np]
        out = fn(xs)
        case = {
            "name": f"{name}_{dt_name}",
            "op": op,
            "dtype": dt_name,
            "inputs": [tj(x) for x in xs],
            "args": args or {},
            "output": tj(out),
        }
        if out_dtype:
            case["out_dtype"] = out_dtype
        if grad and out.is_floating_point():
            go = torch.tensor(rng.standard_normal(tuple(out.shape)), dtype=dt)
            gs = torch.autograd.grad(out, xs, go, allow_unused=True)
            case["grad_output"] = tj(go)
            case["grads"] = [tj(g) if g is not None else tj(torch.zeros_like(x)) for g, x in zip(gs, xs)]
        else:
            case["grad_output"] = None
            case["grads"] = [None for _ in xs]
        CASES.append(case)


def sname(shape):
    return "x".join(str(s) for s in shape) if shape else "scalar"


# ------------------------------------------------------------------ binary (broadcasting)
BIN_SHAPES = [([3, 4], [3, 4]), ([3, 4], [4]), ([2, 1, 3], [4, 1]), ([1], [2, 3])]
BINARY = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": torch.div,
    "pow": torch.pow,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
}
for op, f in BINARY.items():
    for sa, sb in BIN_SHAPES:
        name = f"{op}_{sname(sa)}_{sname(sb)}"
        rng = rng_for(name)
        if op == "pow":
            a, b = positive(rng, sa), normal(rng, sb)
        elif op == "div":
            a = normal(rng, sa)
            b = rng.uniform(0.5, 2.0, sb) * rng.choice([-1.0, 1.0], sb)
        elif op in ("maximum", "minimum"):
            a, b = normal(rng, sa), normal(rng, sb)
            for _ in range(1000):
                d = np.abs(a - b)  # broadcast difference
                if d.min() > 0.05:
                    break
                a, b = normal(rng, sa), normal(rng, sb)
            else:
                raise RuntimeError("ties")
        else:
            a, b = normal(rng, sa), normal(rng, sb)
        add_case(name, op, [a, b], lambda xs, f=f: f(xs[0], xs[1]))

# ------------------------------------------------------------------ unary
UNARY = {
    "neg": (torch.neg, normal),
    "abs": (torch.abs, lambda r, s: away_from(r, s, [0.0])),
    "exp": (torch.exp, normal),
    "log": (torch.log, positive),
    "log1p": (torch.log1p, lambda r, s: r.uniform(-0.5, 2.0, s)),
    "sqrt": (torch.sqrt, positive),
    "rsqrt": (torch.rsqrt, positive),
    "square": (torch.square, normal),
    "recip": (torch.reciprocal, positive),
    "sin": (torch.sin, lambda r, s: normal(r, s) * 2.0),
    "cos": (torch.cos, lambda r, s: normal(r, s) * 2.0),
    "tanh": (torch.tanh, normal),
    "sigmoid": (torch.sigmoid, lambda r, s: normal(r, s) * 2.0),
    "relu": (torch.relu, lambda r, s: away_from(r, s, [0.0])),
    "gelu": (lambda x: F.gelu(x, approximate="none"), lambda r, s: normal(r, s) * 1.5),
    "softplus": (lambda x: F.softplus(x, beta=1.0, threshold=20.0), lambda r, s: normal(r, s) * 2.0),
    "clamp": (lambda x: torch.clamp(x, min=-0.5, max=0.7), lambda r, s: away_from(r, s, [-0.5, 0.7])),
}
for op, (f, gen) in UNARY.items():
    for shape in ([3, 5], [2, 3, 4]):
        name = f"{op}_{sname(shape)}"
        rng = rng_for(name)
        x = gen(rng, shape)
        if op == "softplus" and shape == [2, 3, 4]:
            # Exercise the linear branch (x > threshold=20) and values just below it.
            flat = x.reshape(-1)
            flat[[1, 5, 9, 13]] = [20.5, 25.0, 33.3, 19.5]
            flat[[2, 7]] = [-25.0, -40.0]
            x = flat.reshape(shape)
        args = {"min": -0.5, "max": 0.7} if op == "clamp" else {}
        if op == "softplus":
            args = {"beta": 1.0, "threshold": 20.0}
        add_case(name, op, [x], lambda xs, f=f: f(xs[0]), args=args)

# ------------------------------------------------------------------ reductions
RED_SHAPE = [3, 4, 5]
REDUCE = {
    "sum": lambda x, d, k: torch.sum(x, dim=d, keepdim=k),
    "mean": lambda x, d, k: torch.mean(x, dim=d, keepdim=k),
    "max": lambda x, d, k: torch.amax(x, dim=d, keepdim=k),
    "min": lambda x, d, k: torch.amin(x, dim=d, keepdim=k),
    "logsumexp": lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k),
}
for op, f in REDUCE.items():
    for dims in ([1], [0, 2], [0, 1, 2]):
        for keep in (True, False):
            name = f"{op}_dims{''.join(map(str, dims))}_{'keep' if keep else 'nokeep'}"
            x = normal(rng_for(name), RED_SHAPE)
            add_case(name, op, [x], lambda xs, f=f, d=dims, k=keep: f(xs[0], d, k),
                     args={"dims": dims, "keepdim": keep})
for corr in (1, 0):
    for dims in ([1], [0, 2], [0, 1, 2]):
        for keep in (True, False):
            name = f"var_c{corr}_dims{''.join(map(str, dims))}_{'keep' if keep else 'nokeep'}"
            x = normal(rng_for(name), RED_SHAPE)
            add_case(name, "var", [x],
                     lambda xs, d=dims, k=keep, c=corr: torch.var(xs[0], dim=d, correction=c, keepdim=k),
                     args={"dims": dims, "keepdim": keep, "correction": corr})
for op, f in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
    for d in (0, -1):
        name = f"{op}_dim{d}"
        x = normal(rng_for(name), RED_SHAPE) * 2.0
        add_case(name, op, [x], lambda xs, f=f, d=d: f(xs[0], dim=d), args={"dim": d})
for op, f in (("argmax", torch.argmax), ("argmin", torch.argmin)):
    name = f"{op}_dim1"
    x = normal(rng_for(name), RED_SHAPE)
    add_case(name, op, [x], lambda xs, f=f: f(xs[0], dim=1, keepdim=False),
             args={"dim": 1, "keepdim": False}, grad=False, out_dtype="i64")

# ------------------------------------------------------------------ comparisons
CMP = {"eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge}
for op, f in CMP.items():
    name = f"{op}_3x4_4"
    rng = rng_for(name)
    a, b = int_valued(rng, [3, 4]), int_valued(rng, [4])
    add_case(name, op, [a, b], lambda xs, f=f: f(xs[0], xs[1]), grad=False, out_dtype="bool")

# ------------------------------------------------------------------ where / masked_fill
for mshape in ([3, 1], [3, 4]):
    name = f"where_cond_mask{sname(mshape)}"
    rng = rng_for(name)
    mask = rng.integers(0, 2, mshape).astype(bool)
    mask.reshape(-1)[0] = True
    mask.reshape(-1)[-1] = False
    a, b = normal(rng, [3, 4]), normal(rng, [4])
    add_case(name, "where_cond", [a, b],
             lambda xs, m=mask: torch.where(torch.tensor(m), xs[0], xs[1]), args={"mask": aj(mask)})
for mshape in ([3, 4], [4]):
    name = f"masked_fill_mask{sname(mshape)}"
    rng = rng_for(name)
    mask = rng.integers(0, 2, mshape).astype(bool)
    mask.reshape(-1)[0] = True
    mask.reshape(-1)[-1] = False
    x = normal(rng, [3, 4])
    add_case(name, "masked_fill", [x],
             lambda xs, m=mask: xs[0].masked_fill(torch.tensor(m), -1.5), args={"mask": aj(mask), "value": -1.5})

# ------------------------------------------------------------------ shape ops
name = "cat_dim1"
rng = rng_for(name)
add_case(name, "cat", [normal(rng, [2, 3]), normal(rng, [2, 1]), normal(rng, [2, 4])],
         lambda xs: torch.cat(xs, dim=1), args={"dim": 1})
name = "cat_dim0_3d"
rng = rng_for(name)
add_case(name, "cat", [normal(rng, [1, 2, 3]), normal(rng, [2, 2, 3]), normal(rng, [1, 2, 3])],
         lambda xs: torch.cat(xs, dim=0), args={"dim": 0})
for d in (0, 2):
    name = f"stack_dim{d}"
    rng = rng_for(name)
    add_case(name, "stack", [normal(rng, [2, 3]) for _ in range(3)],
             lambda xs, d=d: torch.stack(xs, dim=d), args={"dim": d})
for d, idx in ((0, [2, 0, 2, 3]), (1, [4, 1, 1, 0])):
    name = f"index_select_dim{d}"
    x = normal(rng_for(name), [4, 5])
    add_case(name, "index_select", [x],
             lambda xs, d=d, i=idx: torch.index_select(xs[0], d, torch.tensor(i)), args={"dim": d, "index": idx})
name = "gather_dim1"
idx = np.array([[0, 3, 3, 1, 2], [2, 2, 0, 0, 1], [3, 1, 0, 2, 3]])
add_case(name, "gather", [normal(rng_for(name), [3, 4])],
         lambda xs: torch.gather(xs[0], 1, torch.tensor(idx)), args={"dim": 1, "index": aj(idx)})
name = "gather_dim0"
idx0 = np.array([[2, 0, 1, 1], [0, 0, 2, 1]])
add_case(name, "gather", [normal(rng_for(name), [3, 4])],
         lambda xs: torch.gather(xs[0], 0, torch.tensor(idx0)), args={"dim": 0, "index": aj(idx0)})
name = "scatter_add_dim1"
sidx = np.array([[1, 1], [0, 4], [3, 3]])
rng = rng_for(name)
add_case(name, "scatter_add", [normal(rng, [3, 5]), normal(rng, [3, 2])],
         lambda xs: xs[0].scatter_add(1, torch.tensor(sidx), xs[1]), args={"dim": 1, "index": aj(sidx)})


def torch_pad(pads):
    # kiln: [[before, after] per dim, dim 0 first]; torch F.pad: last dim first, flat.
    flat = []
    for b, a in reversed(pads):
        flat += [b, a]
    return flat


for shape, pads, value, tag in (([2, 3], [[1, 0], [2, 1]], 0.0, "2d"),
                                ([2, 3, 4], [[0, 0], [1, 1], [0, 2]], 0.0, "3d"),
                                ([2, 3], [[0, 2], [1, 0]], 1.5, "2d_value")):
    name = f"pad_{tag}"
    add_case(name, "pad", [normal(rng_for(name), shape)],
             lambda xs, p=pads, v=value: F.pad(xs[0], torch_pad(p), mode="constant", value=v),
             args={"pads": pads, "value": value})
name = "narrow_dim1"
add_case(name, "narrow", [normal(rng_for(name), [3, 5])],
         lambda xs: torch.narrow(xs[0], 1, 1, 2), args={"dim": 1, "start": 1, "len": 2})
name = "narrow_3d_dim2"
add_case(name, "narrow", [normal(rng_for(name), [2, 3, 4])],
         lambda xs: torch.narrow(xs[0], 2, 2, 2), args={"dim": 2, "start": 2, "len": 2})
name = "permute_201"
add_case(name, "permute", [normal(rng_for(name), [2, 3, 4])],
         lambda xs: xs[0].permute(2, 0, 1), args={"dims": [2, 0, 1]})
name = "transpose_02"
add_case(name, "transpose", [normal(rng_for(name), [2, 3, 4])],
         lambda xs: xs[0].transpose(0, 2), args={"dim0": 0, "dim1": 2})
for src, dst in (([2, 3, 4], [4, 6]), ([2, 3, 4], [24]), ([6], [1, 2, 3, 1])):
    name = f"reshape_{sname(src)}_to_{sname(dst)}"
    add_case(name, "reshape", [normal(rng_for(name), src)],
             lambda xs, s=dst: xs[0].reshape(s), args={"shape": dst})
for src, dst in (([3, 1], [3, 4]), ([4], [2, 3, 4]), ([1, 3, 1], [2, 3, 4])):
    name = f"expand_{sname(src)}_to_{sname(dst)}"
    add_case(name, "expand", [normal(rng_for(name), src)],
             lambda xs, s=dst: xs[0].expand(s), args={"shape": dst})

# ------------------------------------------------------------------ matmul
for sa, sb in (([3, 4], [4, 5]), ([2, 3, 4], [4, 5]), ([2, 1, 3, 4], [3, 4, 2]), ([4], [4, 3]), ([3, 4], [4])):
    name = f"matmul_{sname(sa)}_{sname(sb)}"
    rng = rng_for(name)
    add_case(name, "matmul", [normal(rng, sa), normal(rng, sb)], lambda xs: torch.matmul(xs[0], xs[1]))


# ------------------------------------------------------------------ more ops (fixtures/more_ops.json)
# Ops added for issue #11. Written to their own file so ops.json stays as it was; every case here
# goes through the same harness (tests/torch_fixtures.rs).
MORE_START = len(CASES)
MORE_OUT = os.path.join(ROOT, "crates", "kiln-core", "tests", "fixtures", "more_ops.json")


def halves(rng, shape):
    """Values around +-3 with exact halves (round's ties) and integers mixed in."""
    x = rng.standard_normal(shape) * 3.0
    flat = x.reshape(-1)
    flat[:8] = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.0, -4.0]
    return flat.reshape(shape)


MORE_UNARY = {
    "expm1": (torch.expm1, normal),
    "expm1_tiny": (torch.expm1, lambda r, s: normal(r, s) * 1e-7),
    "log2": (torch.log2, positive),
    "log10": (torch.log10, positive),
    "tan": (torch.tan, lambda r, s: r.uniform(-1.3, 1.3, s)),
    "asin": (torch.asin, lambda r, s: r.uniform(-0.9, 0.9, s)),
    "acos": (torch.acos, lambda r, s: r.uniform(-0.9, 0.9, s)),
    "atan": (torch.atan, lambda r, s: normal(r, s) * 2.0),
    "sinh": (torch.sinh, normal),
    "cosh": (torch.cosh, normal),
    "asinh": (torch.asinh, lambda r, s: normal(r, s) * 2.0),
    "acosh": (torch.acosh, lambda r, s: r.uniform(1.1, 3.0, s)),
    "atanh": (torch.atanh, lambda r, s: r.uniform(-0.9, 0.9, s)),
    "floor": (torch.floor, halves),
    "ceil": (torch.ceil, halves),
    "round": (torch.round, halves),
    "trunc": (torch.trunc, halves),
}
for key, (f, gen) in MORE_UNARY.items():
    op = key.split("_")[0]
    for shape in ([3, 5], [2, 3, 4]):
        name = f"{key}_{sname(shape)}"
        x = gen(rng_for(name), shape)
        add_case(name, op, [x], lambda xs, f=f: f(xs[0]))
for sa, sb in BIN_SHAPES:
    name = f"atan2_{sname(sa)}_{sname(sb)}"
    rng = rng_for(name)
    # Both signs on both sides: every quadrant.
    a = away_from(rng, sa, [0.0], margin=0.1)
    b = away_from(rng, sb, [0.0], margin=0.1)
    add_case(name, "atan2", [a, b], lambda xs: torch.atan2(xs[0], xs[1]))

for shape, dims in (([3, 4], [0]), ([2, 3, 4], [0, 2]), ([2, 3, 4], [-1]), ([2, 3, 4], [2, 1, 0])):
    name = f"flip_{sname(shape)}_dims{''.join(str(d % len(shape)) for d in dims)}"
    add_case(name, "flip", [normal(rng_for(name), shape)], lambda xs, d=dims: torch.flip(xs[0], d), args={"dims": dims})
for op, f in (("tril", torch.tril), ("triu", torch.triu)):
    for shape, diag in (([4, 5], 0), ([4, 5], 1), ([5, 3], -2), ([2, 3, 4], -1), ([2, 3, 4], 3)):
        name = f"{op}_{sname(shape)}_diag{diag}"
        add_case(name, op, [normal(rng_for(name), shape)], lambda xs, f=f, k=diag: f(xs[0], k), args={"diagonal": diag})
for shape, d in (([5], 0), ([3, 4], 1), ([3, 4], 0), ([2, 3, 4], 1), ([2, 3, 4], -1)):
    name = f"cumsum_{sname(shape)}_dim{d}"
    add_case(name, "cumsum", [normal(rng_for(name), shape)], lambda xs, d=d: torch.cumsum(xs[0], d), args={"dim": d})



def with_zeros(x, flat_positions):
    x = x.copy()
    x.reshape(-1)[flat_positions] = 0.0
    return x


# prod / cumprod, with one zero and with two zeros in some slices (torch's exact product-rule grads).
for shape, d, keep, zeros, tag in (([3, 4], 1, False, [], "nozero"), ([3, 4], 0, True, [], "nozero"),
                                   ([2, 3, 5], 2, False, [1, 7, 8], "zeros"), ([4, 3], 0, False, [0, 4, 10], "zeros"),
                                   ([7], 0, False, [], "odd"), ([2, 3, 4], -1, True, [5, 12, 13], "zeros")):
    name = f"prod_{sname(shape)}_dim{d}_{'keep' if keep else 'nokeep'}_{tag}"
    x = with_zeros(normal(rng_for(name), shape), zeros)
    add_case(name, "prod", [x], lambda xs, d=d, k=keep: torch.prod(xs[0], d, keepdim=k), args={"dim": d, "keepdim": keep})
for shape, d, zeros, tag in (([5], 0, [], "nozero"), ([3, 4], 1, [1, 6, 7], "zeros"), ([5, 3], 0, [3, 6], "zeros"),
                             ([2, 3, 6], -1, [2, 9, 11], "zeros")):
    name = f"cumprod_{sname(shape)}_dim{d}_{tag}"
    x = with_zeros(normal(rng_for(name), shape), zeros)
    add_case(name, "cumprod", [x], lambda xs, d=d: torch.cumprod(xs[0], d), args={"dim": d})

for corr in (1, 0):
    for dims, keep in (([1], False), ([0, 2], True), ([0, 1, 2], False)):
        name = f"std_c{corr}_dims{''.join(map(str, dims))}_{'keep' if keep else 'nokeep'}"
        add_case(name, "std", [normal(rng_for(name), RED_SHAPE)],
                 lambda xs, d=dims, k=keep, c=corr: torch.std(xs[0], dim=d, correction=c, keepdim=k),
                 args={"dims": dims, "keepdim": keep, "correction": corr})
for shape, shift, d in (([5], 2, 0), ([3, 4], -1, 1), ([3, 4], 7, 0), ([2, 3, 4], 5, -1)):
    name = f"roll_{sname(shape)}_shift{shift}_dim{d}"
    add_case(name, "roll", [normal(rng_for(name), shape)], lambda xs, k=shift, d=d: torch.roll(xs[0], k, d),
             args={"shift": shift, "dim": d})
for shape, reps in (([3], [2]), ([2, 3], [2, 1]), ([2, 3], [3, 1, 2]), ([2, 1, 3], [1, 2, 2])):
    name = f"repeat_{sname(shape)}_reps{''.join(map(str, reps))}"
    add_case(name, "repeat", [normal(rng_for(name), shape)], lambda xs, r=reps: xs[0].repeat(*r), args={"reps": reps})


# ------------------------------------------------------------------ edges (fixtures/edges.json)
# Gradients at the edges of ops' domains: inputs exactly at clamp's bounds, NaN and infinities
# through relu / maximum / minimum, ties and NaN in max(dim) / min(dim) / argmax. JSON has no NaN or
# infinity, so this file writes non-finite floats as the strings "nan", "inf" and "-inf".
EDGES_OUT = os.path.join(ROOT, "crates", "kiln-core", "tests", "fixtures", "edges.json")
EDGE_CASES = []
NAN, INF = float("nan"), float("inf")


def ej(t):
    """Like tj, with non-finite floats as strings."""
    d = tj(t)
    if t.is_floating_point():
        d["data"] = [v if np.isfinite(v) else ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf"))
                     for v in d["data"]]
    return d


def add_edge(name, op, inputs, fn, args=None):
    """fn(list_of_torch_tensors) -> output tensor or (values, indices) tuple; the gradient is taken
    of the (first) float output, for a seeded upstream gradient."""
    for dt_name, dt in DTYPES.items():
        rng = rng_for("edge|" + name)
        xs = [torch.tensor(np.asarray(a, dtype=np.float64), dtype=dt).requires_grad_(True) for a in inputs]
        out = fn(xs)
        outs = list(out) if isinstance(out, tuple) else [out]
        case = {"name": f"{name}_{dt_name}", "op": op, "dtype": dt_name, "inputs": [ej(x) for x in xs],
                "args": args or {}, "outputs": [ej(o) for o in outs]}
        if outs[0].requires_grad:
            go = torch.tensor(rng.standard_normal(tuple(outs[0].shape)), dtype=dt)
            gs = torch.autograd.grad(outs[0], xs, go, allow_unused=True)
            case["grad_output"] = ej(go)
            case["grads"] = [ej(g) if g is not None else ej(torch.zeros_like(x)) for g, x in zip(gs, xs)]
        EDGE_CASES.append(case)


add_edge("clamp_at_bounds", "clamp", [[-1.0, -0.5, 0.2, 0.7, 2.0, NAN, -INF, INF]],
         lambda xs: torch.clamp(xs[0], min=-0.5, max=0.7), args={"min": -0.5, "max": 0.7})
add_edge("clamp_infinite_min", "clamp", [[-INF, -1.0, 0.7, 1.0, INF]],
         lambda xs: torch.clamp(xs[0], min=-INF, max=0.7), args={"min": "-inf", "max": 0.7})
add_edge("relu_nan_zero_inf", "relu", [[NAN, -1.0, 0.0, -0.0, 2.0, INF, -INF]], lambda xs: torch.relu(xs[0]))
PAIR_A = [NAN, 1.0, NAN, 2.0, 3.0, -1.0, -INF, INF, INF]
PAIR_B = [1.0, NAN, NAN, 2.0, 1.0, 4.0, -INF, INF, NAN]
add_edge("maximum_nan_ties", "maximum", [PAIR_A, PAIR_B], lambda xs: torch.maximum(xs[0], xs[1]))
add_edge("minimum_nan_ties", "minimum", [PAIR_A, PAIR_B], lambda xs: torch.minimum(xs[0], xs[1]))
TIES = [[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 0.0, 5.0], [0.0, -2.0, -2.0, -2.0], [4.0, 4.0, 4.0, 4.0]]
NANS = [[NAN, 1.0, NAN, -1.0], [2.0, 2.0, NAN, 0.0], [-INF, -INF, 1.0, INF]]
for tag, x in (("ties", TIES), ("nan", NANS)):
    for red in ("max", "min"):
        for dim in (1, 0):
            for keep in (False, True):
                name = f"{red}_dim_{tag}_d{dim}_{'keep' if keep else 'nokeep'}"
                add_edge(name, f"{red}_dim", [x],
                         lambda xs, r=red, d=dim, k=keep: tuple(getattr(xs[0], r)(dim=d, keepdim=k)),
                         args={"dim": dim, "keepdim": keep})
    for red in ("argmax", "argmin"):
        add_edge(f"{red}_all_{tag}", f"{red}_all", [x], lambda xs, r=red: getattr(torch, r)(xs[0]))


# ------------------------------------------------------------------ more ops, part 2 (fixtures/more_ops2.json)
# einsum and outer, sort / argsort / topk, logical reductions and ops, masked_select, nonzero,
# scatter, index_put and multi-dim roll (issue #11). Same format as edges.json: every case lists
# all its outputs (values and indices), each with its dtype ("f32", "f64", "i64" or "bool"), and
# non-finite floats as strings; integer arguments (index tensors, masks) live in "args". The
# gradient, when there is one, is that of the first output.
MORE2_OUT = os.path.join(ROOT, "crates", "kiln-core", "tests", "fixtures", "more_ops2.json")
MORE2_CASES = []


def dtype_name(t):
    return {torch.float32: "f32", torch.float64: "f64", torch.int64: "i64", torch.bool: "bool"}[t.dtype]


def add_more2(name, op, inputs, fn, args=None, grad=True):
    for dt_name, dt in DTYPES.items():
        rng = rng_for("more2|" + name)
        xs = [torch.tensor(np.asarray(a, dtype=np.float64), dtype=dt).requires_grad_(grad) for a in inputs]
        out = fn(xs)
        outs = list(out) if isinstance(out, tuple) else [out]
        case = {"name": f"{name}_{dt_name}", "op": op, "dtype": dt_name, "inputs": [ej(x) for x in xs],
                "args": args or {}, "outputs": [dict(ej(o), dtype=dtype_name(o)) for o in outs]}
        if grad and outs[0].requires_grad:
            go = torch.tensor(rng.standard_normal(tuple(outs[0].shape)), dtype=dt)
            gs = torch.autograd.grad(outs[0], xs, go, allow_unused=True)
            case["grad_output"] = ej(go)
            case["grads"] = [ej(g) if g is not None else ej(torch.zeros_like(x)) for g, x in zip(gs, xs)]
        MORE2_CASES.append(case)


def m2rng(name):
    return rng_for("more2|inputs|" + name)


# outer and einsum: the common contractions, implicit outputs, diagonals, size-1 broadcasting.
r = m2rng("outer")
add_more2("outer_3_4", "outer", [normal(r, [3]), normal(r, [4])], lambda xs: torch.outer(xs[0], xs[1]))
EINSUM = [
    ("matmul", "ij,jk->ik", [[3, 4], [4, 5]]),
    ("matmul_implicit", "ij,jk", [[3, 4], [4, 2]]),
    ("bmm", "bij,bjk->bik", [[2, 3, 4], [2, 4, 5]]),
    ("trace", "ii->", [[4, 4]]),
    ("trace_implicit", "ii", [[3, 3]]),
    ("diagonal", "ii->i", [[4, 4]]),
    ("diagonal_3d", "iij->ji", [[3, 3, 2]]),
    ("triple_diagonal", "iii->i", [[3, 3, 3]]),
    ("outer", "i,j->ij", [[3], [4]]),
    ("transpose", "ij->ji", [[3, 4]]),
    ("permute_implicit", "kji", [[2, 3, 4]]),
    ("sum_all", "ij->", [[3, 4]]),
    ("sum_dim", "ijk->ik", [[2, 3, 4]]),
    ("dot", "i,i->", [[5], [5]]),
    ("bilinear", "bi,bj,ij->b", [[3, 4], [3, 5], [4, 5]]),
    ("bilinear_torch_doc", "bn,anm,bm->ba", [[2, 3], [4, 3, 5], [2, 5]]),
    ("abT", "ij,kj->ik", [[3, 4], [5, 4]]),
    ("diag_then_contract", "iij,jk->ik", [[3, 3, 4], [4, 2]]),
    ("batch_outer", "bi,bj->bij", [[2, 3], [2, 4]]),
    ("chain4", "ab,bc,cd,de->ae", [[2, 3], [3, 4], [4, 2], [2, 3]]),
    ("upper_case_implicit", "bA,bc", [[3, 2], [3, 4]]),
    ("broadcast_size1", "ij,ij->ij", [[3, 1], [1, 4]]),
    ("broadcast_contract", "ij,jk->ik", [[3, 1], [4, 2]]),
    ("spaces", " ij , jk -> ki ", [[2, 3], [3, 4]]),
    ("scalar_operand", ",ij->ij", [[], [2, 3]]),
    # Ellipsis: broadcast right-aligned, first in the implicit output, summed when an explicit
    # output leaves it out.
    ("ellipsis_bmm", "...ij,...jk->...ik", [[2, 3, 2, 4], [3, 4, 5]]),
    ("ellipsis_bmm_implicit", "...ij,...jk", [[2, 3, 4], [1, 4, 2]]),
    ("ellipsis_linear", "...ij,jk->...ik", [[1, 3, 2, 3], [3, 4]]),
    ("ellipsis_summed", "...ij->ij", [[2, 3, 4, 4]]),
    ("ellipsis_diagonal", "...ii->...i", [[2, 3, 3]]),
    ("ellipsis_middle", "a...b,...b", [[2, 5, 3], [1, 3]]),
    ("ellipsis_trailing", "ij...,jk", [[2, 3, 4], [3, 2]]),
    ("ellipsis_empty", "...ij,jk->...ik", [[2, 3], [3, 4]]),
    ("ellipsis_only", "...", [[3, 2]]),
    ("ellipsis_batch_dot", "b...,b...->b", [[2, 3, 2], [2, 3, 2]]),
]
for tag, spec, shapes in EINSUM:
    r = m2rng("einsum_" + tag)
    add_more2(f"einsum_{tag}", "einsum", [normal(r, s) for s in shapes],
              lambda xs, sp=spec: torch.einsum(sp, *xs), args={"spec": spec})

# sort / argsort / topk: ties (stable order), NaN and infinities.
NAN_TIES = [2.0, NAN, -1.0, 2.0, INF, -INF, 0.5, NAN, -1.0, 2.0]
for desc in (False, True):
    add_more2(f"sort_1d_nan_ties_{'desc' if desc else 'asc'}", "sort", [NAN_TIES],
              lambda xs, d=desc: tuple(torch.sort(xs[0], dim=0, descending=d, stable=True)),
              args={"dim": 0, "descending": desc})
for shape, dim, desc in (([3, 4], 1, False), ([3, 4], 0, True), ([2, 3, 4], -1, True), ([2, 3, 4], 1, False)):
    tag = f"sort_{sname(shape)}_dim{dim}_{'desc' if desc else 'asc'}"
    r = m2rng(tag)
    x = int_valued(r, shape, -3, 3) + 0.25 * normal(r, shape).round()  # some ties
    add_more2(tag, "sort", [x], lambda xs, d=dim, de=desc: tuple(torch.sort(xs[0], dim=d, descending=de, stable=True)),
              args={"dim": dim, "descending": desc})
for shape, dim, desc in (([3, 4], 1, True), ([4, 3], 0, False)):
    tag = f"argsort_{sname(shape)}_dim{dim}_{'desc' if desc else 'asc'}"
    x = int_valued(m2rng(tag), shape, -2, 2)
    add_more2(tag, "argsort", [x], lambda xs, d=dim, de=desc: torch.argsort(xs[0], dim=d, descending=de, stable=True),
              args={"dim": dim, "descending": desc}, grad=False)
for shape, k, dim, largest in (([3, 5], 2, 1, True), ([4, 3], 3, 0, False), ([2, 3, 6], 6, -1, True),
                               ([5], 1, 0, False), ([3, 4], 0, 1, True)):
    tag = f"topk_{sname(shape)}_k{k}_dim{dim}_{'largest' if largest else 'smallest'}"
    x = normal(m2rng(tag), shape)  # no ties: torch leaves the order of equal elements open
    add_more2(tag, "topk", [x], lambda xs, k=k, d=dim, l=largest: tuple(torch.topk(xs[0], k, dim=d, largest=l, sorted=True)),
              args={"k": k, "dim": dim, "largest": largest})
add_more2("topk_nan_largest", "topk", [[1.0, NAN, 3.0, -INF, 2.0]],
          lambda xs: tuple(torch.topk(xs[0], 2, dim=0, largest=True)), args={"k": 2, "dim": 0, "largest": True})
add_more2("topk_nan_smallest", "topk", [[1.0, NAN, 3.0, -INF, 2.0]],
          lambda xs: tuple(torch.topk(xs[0], 4, dim=0, largest=False)), args={"k": 4, "dim": 0, "largest": False})

# Logical reductions and ops: zeros, NaN (true) and infinities.
LOGIC_A = [[0.0, 1.0, NAN, 0.0], [0.0, 0.0, 0.0, 0.0], [2.0, -INF, 0.5, -1.0]]
LOGIC_B = [0.0, 3.0, 0.0, NAN]
for red in ("any", "all"):
    for dim, keep in ((1, False), (0, True), (-1, True)):
        add_more2(f"{red}_dim{dim}_{'keep' if keep else 'nokeep'}", red, [LOGIC_A],
                  lambda xs, r=red, d=dim, k=keep: getattr(torch, r)(xs[0], dim=d, keepdim=k),
                  args={"dim": dim, "keepdim": keep}, grad=False)
    add_more2(f"{red}_all", f"{red}_all", [LOGIC_A], lambda xs, r=red: getattr(torch, r)(xs[0]), grad=False)
    add_more2(f"{red}_all_empty", f"{red}_all", [np.zeros([0, 3])], lambda xs, r=red: getattr(torch, r)(xs[0]), grad=False)
    add_more2(f"{red}_empty_dim", red, [np.zeros([2, 0])], lambda xs, r=red: getattr(torch, r)(xs[0], dim=1),
              args={"dim": 1, "keepdim": False}, grad=False)
for op in ("logical_and", "logical_or", "logical_xor"):
    add_more2(f"{op}_broadcast", op, [LOGIC_A, LOGIC_B], lambda xs, o=op: getattr(torch, o)(xs[0], xs[1]), grad=False)
add_more2("logical_not", "logical_not", [LOGIC_A], lambda xs: torch.logical_not(xs[0]), grad=False)

# masked_select (the mask and the input broadcast), nonzero.
for tag, xshape, mask in (("same", [3, 4], [[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 0]]),
                          ("mask_row", [3, 4], [0, 1, 1, 0]),
                          ("input_row", [1, 4], [[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 1, 0]]),
                          ("none", [2, 3], [[0, 0, 0], [0, 0, 0]])):
    name = f"masked_select_{tag}"
    m = np.array(mask, dtype=bool)
    add_more2(name, "masked_select", [normal(m2rng(name), xshape)],
              lambda xs, m=m: torch.masked_select(xs[0], torch.tensor(m)), args={"mask": aj(m)})
add_more2("nonzero_2d", "nonzero", [LOGIC_A], lambda xs: torch.nonzero(xs[0]), grad=False)
add_more2("nonzero_3d", "nonzero", [int_valued(m2rng("nonzero_3d"), [2, 3, 2], -1, 1)], lambda xs: torch.nonzero(xs[0]), grad=False)
add_more2("nonzero_1d", "nonzero", [[0.0, 5.0, 0.0, -1.0]], lambda xs: torch.nonzero(xs[0]), grad=False)

# scatter with unique targets (torch leaves duplicates unspecified), index smaller than src.
# A source larger than the index is forward-only: torch cannot differentiate it (its gradient has
# the index's shape); kiln pads that gradient with zeros, checked by gradcheck instead.
for tag, dim, xshape, sshape, idx in (("dim1", 1, [3, 5], [3, 2], [[4, 0], [1, 3], [2, 1]]),
                                      ("dim0", 0, [4, 3], [2, 3], [[3, 0, 1], [0, 2, 2]]),
                                      ("dim0_src_larger", 0, [4, 3], [3, 4], [[3, 0, 1], [0, 2, 2]]),
                                      ("3d_dim2", 2, [2, 2, 4], [2, 2, 2], [[[1, 3], [0, 2]], [[2, 1], [3, 0]]])):
    name = f"scatter_{tag}"
    r = m2rng(name)
    i = np.array(idx)
    add_more2(name, "scatter", [normal(r, xshape), normal(r, sshape)],
              lambda xs, d=dim, i=i: xs[0].scatter(d, torch.tensor(i), xs[1]), args={"dim": dim, "index": aj(i)},
              grad=not tag.endswith("src_larger"))

# index_put with one or two index tensors, values broadcast; accumulate with duplicates.
for tag, xshape, idx, vshape, acc in (("rows", [5, 3], [[0, 2, 4]], [3, 3], False),
                                      ("rows_broadcast_values", [5, 3], [[4, 1]], [3], False),
                                      ("rows_accumulate_dupes", [5, 3], [[1, 1, 3, 1]], [4, 3], True),
                                      ("two_dims", [4, 5, 2], [[0, 3, 2], [1, 4, 0]], [3, 2], False),
                                      ("two_dims_broadcast_index", [4, 5], [[2], [0, 3, 4]], [3], True),
                                      ("all_dims", [3, 4], [[0, 2, 1], [3, 0, 1]], [3], False)):
    name = f"index_put_{tag}"
    r = m2rng(name)
    add_more2(name, "index_put", [normal(r, xshape), normal(r, vshape)],
              lambda xs, ix=idx, a=acc: xs[0].index_put(tuple(torch.tensor(i) for i in ix), xs[1], accumulate=a),
              args={"indices": idx, "accumulate": acc})

for shape, shifts, dims in (([3, 4], [1, -2], [0, 1]), ([2, 3, 4], [5, 1], [2, 0]), ([3, 4], [2, 3], [1, 1])):
    name = f"roll_dims_{sname(shape)}_shifts{'_'.join(map(str, shifts))}_dims{''.join(map(str, dims))}"
    add_more2(name, "roll_dims", [normal(m2rng(name), shape)], lambda xs, s=shifts, d=dims: torch.roll(xs[0], s, d),
              args={"shifts": shifts, "dims": dims})


PARTS = ("ops", "more", "edges", "more2")


def main(parts):
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    more2_names = [c["name"] for c in MORE2_CASES]
    assert len(more2_names) == len(set(more2_names)), "duplicate case names"
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    if "ops" in parts:
        doc = {"torch_version": torch.__version__, "numpy_version": np.__version__, "cases": CASES[:MORE_START]}
        with open(OUT, "w") as fh:
            json.dump(doc, fh, separators=(",", ":"))
            fh.write("\n")
        ops = sorted({c["op"] for c in CASES[:MORE_START]})
        size = os.path.getsize(OUT)
        core = CASES[:MORE_START]
        print(f"wrote {OUT}: {len(core)} cases ({len(core)//2} per dtype), {len(ops)} ops, {size/1e6:.2f} MB")
        print("ops:", " ".join(ops))
    if "more" in parts:
        more = CASES[MORE_START:]
        with open(MORE_OUT, "w") as fh:
            json.dump({"torch_version": torch.__version__, "numpy_version": np.__version__, "cases": more}, fh, separators=(",", ":"))
            fh.write("\n")
        print(f"wrote {MORE_OUT}: {len(more)} cases, ops: {' '.join(sorted({c['op'] for c in more}))}")
    if "edges" in parts:
        with open(EDGES_OUT, "w") as fh:
            json.dump({"torch_version": torch.__version__, "cases": EDGE_CASES}, fh, separators=(",", ":"), allow_nan=False)
            fh.write("\n")
        print(f"wrote {EDGES_OUT}: {len(EDGE_CASES)} cases")
    if "more2" in parts:
        with open(MORE2_OUT, "w") as fh:
            json.dump({"torch_version": torch.__version__, "numpy_version": np.__version__, "cases": MORE2_CASES}, fh,
                      separators=(",", ":"), allow_nan=False)
            fh.write("\n")
        print(f"wrote {MORE2_OUT}: {len(MORE2_CASES)} cases, ops: {' '.join(sorted({c['op'] for c in MORE2_CASES}))}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    which = sys.argv[1:] or list(PARTS)
    unknown = [w for w in which if w not in PARTS]
    if unknown:
        sys.exit(f"unknown part(s) {unknown}; choose from {PARTS}")
    main(which)
