#!/usr/bin/env python3
"""Generate torch.func reference values for kiln-core's function transforms (kiln_core::func).

Output: crates/kiln-core/tests/fixtures/func.json, read by crates/kiln-core/tests/func.rs.

Run:  /tmp/peers/bin/python scripts/gen_func_fixtures.py

The model is a 3-8-6-2 MLP with tanh activations, in float64, whose 100 parameters are one flat
vector (W1 [3, 8], b1 [8], W2 [8, 6], b2 [6], W3 [6, 2], b3 [2], row-major, in that order;
layers compute x @ W + b). The loss of a batch X [5, 3] with soft targets Y [5, 2] is
    mean_b( -sum_c Y[b, c] * log_softmax(out[b])[c] ) + 0.1 * mean(out ** 2).
Parameters, inputs, targets, tangent and cotangent are deterministic sin/cos fills (no RNG), and
are stored in the file, so the Rust test rebuilds the same function on exactly these values.

Recorded (tensors are {"shape", "data"}, data flat row-major, floats as shortest round-trip repr):
  loss                     loss(p, X, Y)
  grad_jacrev, grad_jacfwd torch.func.jacrev / jacfwd of loss w.r.t. p           [100]
  hessian                  torch.func.hessian of loss w.r.t. p                    [100, 100]
  jac_out_p_rev/_fwd       jacrev / jacfwd of mlp(p, X) w.r.t. p                  [5, 2, 100]
  jac_out_x                jacrev of mlp(p, X) w.r.t. X                           [5, 2, 5, 3]
  jvp_out, jvp_tangent     torch.func.jvp of p -> mlp(p, X) at p with tangent v   [5, 2] each
  vjp                      torch.func.vjp of p -> mlp(p, X), pulled back from ct  [100]
  hvp                      jvp of grad(loss) with tangent v (forward over reverse)  [100]
  vmap_mlp                 vmap(mlp_single, in_dims=(None, 0))(p, X)              [5, 2]
  vmap_mlp_t               vmap(mlp_single, in_dims=(None, 1), out_dims=1)(p, X.T) [2, 5]
  vmap_grad                vmap(grad(loss_single), in_dims=(None, 0, 0))(p, X, Y) [5, 100]
  vmap_jac                 vmap(jacrev(mlp_single), in_dims=(None, 0))(p, X)      [5, 2, 100]
"""
import json
import math
import os

import torch
from torch.func import grad, hessian, jacfwd, jacrev, jvp, vjp, vmap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "kiln-core", "tests", "fixtures", "func.json")
D = torch.float64
SIZES = [(3, 8), (8, 6), (6, 2)]


def fill(n, a, b, f=math.sin, scale=1.0):
    return torch.tensor([scale * f(a * i + b) for i in range(n)], dtype=D)


def unpack(p):
    out, k = [], 0
    for fan_in, fan_out in SIZES:
        w = p[k : k + fan_in * fan_out].reshape(fan_in, fan_out)
        k += fan_in * fan_out
        b = p[k : k + fan_out]
        k += fan_out
        out.append((w, b))
    assert k == p.numel() == 100
    return out


def mlp(p, x):
    (w1, b1), (w2, b2), (w3, b3) = unpack(p)
    h = torch.tanh(x @ w1 + b1)
    h = torch.tanh(h @ w2 + b2)
    return h @ w3 + b3


def loss(p, x, y):
    out = mlp(p, x)
    ce = -(y * torch.log_softmax(out, -1)).sum(-1).mean()
    return ce + 0.1 * (out**2).mean()


def mlp_single(p, x):
    return mlp(p, x.unsqueeze(0)).squeeze(0)


def loss_single(p, x, y):
    return loss(p, x.unsqueeze(0), y.unsqueeze(0))


def tj(t):
    t = t.detach()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def main():
    p = fill(100, 1.3, 0.7, scale=0.5)
    x = fill(15, 0.9, 0.3, f=math.cos).reshape(5, 3)
    s = fill(5, 2.1, 0.5, scale=0.4) + 0.5
    y = torch.stack([s, 1 - s], dim=1)
    v = fill(100, 0.37, -1.1, f=math.cos)
    ct = fill(10, 1.7, 0.2).reshape(5, 2)

    f_loss = lambda p: loss(p, x, y)  # noqa: E731
    f_out = lambda p: mlp(p, x)  # noqa: E731

    h = hessian(f_loss)(p)
    # torch.func.hessian is jacfwd(jacrev); reverse over reverse must agree.
    assert torch.allclose(h, jacrev(jacrev(f_loss))(p), rtol=0, atol=1e-13)
    jvp_out, jvp_tan = jvp(f_out, (p,), (v,))
    _, vjp_fn = vjp(f_out, p)
    (vjp_p,) = vjp_fn(ct)
    _, hvp_v = jvp(grad(f_loss), (p,), (v,))
    assert torch.allclose(hvp_v, h @ v, rtol=0, atol=1e-12)

    cases = {
        "params": tj(p),
        "x": tj(x),
        "y": tj(y),
        "v": tj(v),
        "ct": tj(ct),
        "loss": tj(f_loss(p)),
        "grad_jacrev": tj(jacrev(f_loss)(p)),
        "grad_jacfwd": tj(jacfwd(f_loss)(p)),
        "hessian": tj(h),
        "jac_out_p_rev": tj(jacrev(f_out)(p)),
        "jac_out_p_fwd": tj(jacfwd(f_out)(p)),
        "jac_out_x": tj(jacrev(mlp, argnums=1)(p, x)),
        "jvp_out": tj(jvp_out),
        "jvp_tangent": tj(jvp_tan),
        "vjp": tj(vjp_p),
        "hvp": tj(hvp_v),
        "vmap_mlp": tj(vmap(mlp_single, in_dims=(None, 0))(p, x)),
        "vmap_mlp_t": tj(vmap(mlp_single, in_dims=(None, 1), out_dims=1)(p, x.T.contiguous())),
        "vmap_grad": tj(vmap(grad(loss_single), in_dims=(None, 0, 0))(p, x, y)),
        "vmap_jac": tj(vmap(jacrev(mlp_single), in_dims=(None, 0))(p, x)),
    }
    with open(OUT, "w") as fh:
        json.dump({"torch_version": torch.__version__, "cases": cases}, fh, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
