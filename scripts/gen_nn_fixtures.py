#!/usr/bin/env python3
"""Generate PyTorch reference fixtures for kiln-nn.

Writes into crates/kiln-nn/tests/fixtures/:
  optim.json            optimiser trajectories (10 steps, float64)
  schedules.json        learning-rate schedules over 30 epochs
  losses.json           loss values + input gradients (float64)
  loss_edges.json       losses at domain edges (BCE at p = 0 / 1, every target ignored), f64 + f32
  layers.json           layer forward/backward incl. weights (float64)
  activations.json      activation values, gradients and second-order gradients (float64)
  layers2.json          GroupNorm, RMSNorm, InstanceNorm1d/2d, Embedding padding_idx (float64)
  optim2.json           NAdam, RAdam, Adamax, maximize, LBFGS (closure; strong Wolfe), clip_grad_norm_ norm types
  schedules2.json       MultiStepLR, OneCycleLR (cos / linear, two / three phases, momentum)
  attention.json        MultiheadAttention masks, cross-attention, kdim/vdim, bias=False
  layers3.json          ConvTranspose1d/2d, MaxPool1d/AvgPool1d, ceil_mode, count_include_pad, BatchNorm options (momentum=None)
  losses2.json          class weights, soft targets, [N, C, d...] inputs, pos_weight, KL divergence, Huber
  interop_mlp.{safetensors,json}   Linear/ReLU MLP (float32)
  interop_cnn.{safetensors,json}   small CNN (float32)
  interop_norm.{safetensors,json}  Conv2d+BatchNorm2d+LayerNorm in eval mode (float32)

Run:  /tmp/peers/bin/python scripts/gen_nn_fixtures.py [optim schedules losses loss_edges layers interop activations losses2 layers2 layers3 optim2 schedules2 attention]
(no arguments = everything; naming parts rewrites only those files). See scripts/README.md for the formats.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "crates", "kiln-nn", "tests", "fixtures")


def tj(t):
    t = torch.as_tensor(t).detach()
    if t.dtype in (torch.bool, torch.int64, torch.int32):
        data = [int(v) for v in t.reshape(-1).tolist()]
    else:
        data = [float(v) for v in t.reshape(-1).tolist()]
    return {"shape": list(t.shape), "data": data}


def write_json(name, doc):
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as fh:
        json.dump(doc, fh, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)/1e3:.1f} kB)")
    return path


# ====================================================================== optimisers
OPTIM_CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1}),
]
OPTIM_SHAPES = [(3, 4), (5,)]
OPTIM_STEPS = 10


def optim_trajectory_cases(configs, params0, grads):
    """Each (name, kwargs) torch optimiser stepped on float64 copies of params0 with the fixed
    gradients grads[step]; records the parameters after every step."""
    cases = []
    for name, kwargs in configs:
        ps = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params0]
        # foreach=False: the plain per-parameter reference loop (identical maths, simplest to follow).
        opt = getattr(torch.optim, name)(ps, foreach=False, **kwargs)
        traj = []
        for step in range(len(grads)):
            for p, g in zip(ps, grads[step]):
                p.grad = torch.tensor(g, dtype=torch.float64)
            opt.step()
            traj.append([tj(p) for p in ps])
        # record the full hyper-parameters PyTorch actually used (defaults filled in)
        group = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
        skip = {"foreach", "differentiable", "capturable", "fused", "initial_lr"}
        full = {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()
                if isinstance(v, (int, float, bool, tuple)) and k not in skip}
        cases.append({
            "optimizer": name,
            "kwargs": kwargs,
            "resolved_kwargs": full,
            "params0": [tj(torch.tensor(p)) for p in params0],
            "grads": [[tj(torch.tensor(g)) for g in step] for step in grads],
            "params": traj,
        })
    return cases


def gen_optim():
    rng = np.random.default_rng(1234)
    params0 = [rng.standard_normal(s) for s in OPTIM_SHAPES]
    grads = [[rng.standard_normal(s) for s in OPTIM_SHAPES] for _ in range(OPTIM_STEPS)]
    cases = optim_trajectory_cases(OPTIM_CONFIGS, params0, grads)
    write_json("optim.json", {"torch_version": torch.__version__, "dtype": "f64", "cases": cases})
    return len(cases)


OPTIM2_CONFIGS = [
    ("NAdam", {"lr": 0.01}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "betas": (0.8, 0.99)}),
    ("RAdam", {"lr": 0.01}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1, "betas": (0.9, 0.9)}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("Adamax", {"lr": 0.01}),
    ("Adamax", {"lr": 0.01, "weight_decay": 0.1, "betas": (0.8, 0.9)}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "maximize": True}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "maximize": True}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "maximize": True}),
    ("RMSprop", {"lr": 0.01, "centered": True, "maximize": True}),
    ("Adagrad", {"lr": 0.1, "maximize": True}),
    ("NAdam", {"lr": 0.01, "maximize": True}),
    ("RAdam", {"lr": 0.01, "maximize": True}),
    ("Adamax", {"lr": 0.01, "maximize": True}),
]
LBFGS_CONFIGS = [
    ({}, 3),
    ({"lr": 0.5, "max_iter": 5, "history_size": 3}, 4),
    ({"max_iter": 10, "line_search_fn": "strong_wolfe"}, 3),
    ({"lr": 0.8, "max_iter": 6, "history_size": 4, "line_search_fn": "strong_wolfe", "maximize": True}, 3),
    # One iteration per step: what kiln's gradient-only Optimizer::step does (history across steps).
    ({"lr": 0.5, "max_iter": 1, "history_size": 3}, 6),
]


def lbfgs_loss(x, y, b):
    """The LBFGS test problem (non-convex through the product x @ y)."""
    return ((x @ y - b) ** 2).sum() + 0.1 * (x ** 4).sum() + 0.5 * (y ** 2).sum()


def gen_optim2():
    """NAdam, RAdam, Adamax and maximize=True of every optimiser on optim.json's kind of problem,
    LBFGS (fixed step and strong Wolfe) on a closure, and clip_grad_norm_ with other norm types.
    The default dtype is float64 here so that torch's scalar state (NAdam's mu_product) is float64."""
    torch.set_default_dtype(torch.float64)
    try:
        rng = np.random.default_rng(4321)
        params0 = [rng.standard_normal(s) for s in OPTIM_SHAPES]
        grads = [[rng.standard_normal(s) for s in OPTIM_SHAPES] for _ in range(OPTIM_STEPS)]
        cases = optim_trajectory_cases(OPTIM2_CONFIGS, params0, grads)

        x0, y0, b = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(3)
        lbfgs = []
        for kwargs, steps in LBFGS_CONFIGS:
            x, y = torch.tensor(x0, requires_grad=True), torch.tensor(y0, requires_grad=True)
            bt = torch.tensor(b)
            opt = torch.optim.LBFGS([x, y], **kwargs)
            sign = -1.0 if kwargs.get("maximize") else 1.0

            def closure():
                opt.zero_grad()
                loss = sign * lbfgs_loss(x, y, bt)
                loss.backward()
                return loss

            traj = []
            for _ in range(steps):
                loss = opt.step(closure)
                traj.append({"loss": float(loss.detach()), "params": [tj(x), tj(y)],
                             "func_evals": opt.state[x]["func_evals"]})
            lbfgs.append({"kwargs": kwargs, "sign": sign, "steps": traj})

        clip = []
        gs = [rng.standard_normal((3, 4)) * 2.0, rng.standard_normal(5)]
        for norm_type, max_norm in [(1.0, 2.0), (3.0, 1.5), ("inf", 0.5), (2.0, 1.0), (0.5, 1e3)]:
            ps = [torch.zeros(g.shape, requires_grad=True) for g in gs]
            for p, g in zip(ps, gs):
                p.grad = torch.tensor(g)
            nt = float(norm_type)
            total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=nt, foreach=False)
            clip.append({"norm_type": norm_type, "max_norm": max_norm, "grads": [tj(torch.tensor(g)) for g in gs],
                         "total_norm": float(total), "clipped": [tj(p.grad) for p in ps]})
    finally:
        torch.set_default_dtype(torch.float32)
    write_json("optim2.json", {
        "torch_version": torch.__version__, "dtype": "f64", "cases": cases,
        "lbfgs_problem": {"x0": tj(torch.tensor(x0)), "y0": tj(torch.tensor(y0)), "b": tj(torch.tensor(b)),
                          "loss": "sign * (sum((x @ y - b)^2) + 0.1 sum(x^4) + 0.5 sum(y^2))"},
        "lbfgs": lbfgs,
        "clip_grad_norm": clip,
    })
    return len(cases) + len(lbfgs) + len(clip)


# ====================================================================== LR schedules
SCHED_EPOCHS = 30
BASE_LR = 0.1


def plateau_metrics():
    # Decreasing, then flat/noisy plateaus so several reductions happen.
    # Epochs 11-13 improve on best=0.65 by less than the relative threshold (best*(1-1e-4) = 0.649935),
    # so they count as bad epochs and trigger a reduction after epoch 13 (none if the threshold were ignored).
    m = [1.0, 0.8, 0.7, 0.69, 0.695, 0.70, 0.71, 0.65, 0.66, 0.66,
         0.66, 0.64999, 0.64998, 0.64995, 0.5, 0.51, 0.52, 0.53, 0.49, 0.48,
         0.48, 0.48, 0.48, 0.48, 0.47, 0.47, 0.47, 0.47, 0.47, 0.47]
    assert len(m) == SCHED_EPOCHS
    return m


def schedule_cases(configs, metrics=None, epochs=SCHED_EPOCHS):
    """Each (name, kwargs) torch scheduler on SGD(lr=BASE_LR): the lr used in every epoch (and
    the momentum, when the scheduler cycles it)."""
    S = torch.optim.lr_scheduler
    cases = []
    for name, kwargs in configs:
        p = torch.zeros(1, requires_grad=True)
        cycles_momentum = name == "OneCycleLR" and kwargs.get("cycle_momentum", True)
        opt = torch.optim.SGD([p], lr=BASE_LR, momentum=0.9 if cycles_momentum else 0.0)
        sched = getattr(S, name)(opt, **kwargs)
        lrs, moms = [], []
        for epoch in range(epochs):
            lrs.append(float(opt.param_groups[0]["lr"]))
            moms.append(float(opt.param_groups[0]["momentum"]))
            opt.step()  # (no grad: a no-op, but keeps the documented call order)
            if name == "ReduceLROnPlateau":
                sched.step(metrics[epoch])
            elif epoch + 1 < epochs or name != "OneCycleLR":
                sched.step()  # (OneCycleLR refuses to step past total_steps)
        case = {"scheduler": name, "kwargs": kwargs, "base_lr": BASE_LR, "epochs": epochs, "lrs": lrs}
        if name == "ReduceLROnPlateau":
            case["metrics"] = metrics
        if cycles_momentum:
            case["momentums"] = moms
        cases.append(case)
    return cases


def gen_schedules():
    configs = [
        ("StepLR", {"step_size": 5, "gamma": 0.5}),
        ("ExponentialLR", {"gamma": 0.9}),
        ("CosineAnnealingLR", {"T_max": 10, "eta_min": 0.001}),
        ("CosineAnnealingWarmRestarts", {"T_0": 5, "T_mult": 2}),
        ("LinearLR", {"start_factor": 0.1, "total_iters": 5}),
        ("ReduceLROnPlateau", {"mode": "min", "factor": 0.5, "patience": 2, "threshold": 1e-4,
                               "threshold_mode": "rel", "cooldown": 0, "min_lr": 0.0, "eps": 1e-8}),
    ]
    cases = schedule_cases(configs, plateau_metrics())
    write_json("schedules.json", {
        "torch_version": torch.__version__,
        "convention": "lrs[e] = learning rate used during epoch e (e = 0..epochs-1); lrs[0] is the lr right after "
                      "constructing the scheduler (base_lr, except LinearLR: start_factor * base_lr). "
                      "scheduler.step() is called once at the end of every epoch (ReduceLROnPlateau: "
                      "step(metrics[e]) at the end of epoch e).",
        "cases": cases,
    })
    return len(cases)


def gen_schedules2():
    """MultiStepLR and OneCycleLR (cos / linear anneal, two and three phases, momentum cycling)."""
    configs = [
        ("MultiStepLR", {"milestones": [3, 7, 7, 20], "gamma": 0.5}),
        ("MultiStepLR", {"milestones": [12, 4], "gamma": 0.1}),
        ("OneCycleLR", {"max_lr": 1.0, "total_steps": SCHED_EPOCHS}),
        ("OneCycleLR", {"max_lr": 0.5, "total_steps": SCHED_EPOCHS, "anneal_strategy": "linear", "pct_start": 0.25}),
        ("OneCycleLR", {"max_lr": 0.5, "total_steps": SCHED_EPOCHS, "three_phase": True, "div_factor": 10.0,
                        "final_div_factor": 100.0}),
        ("OneCycleLR", {"max_lr": 0.5, "total_steps": SCHED_EPOCHS, "three_phase": True, "anneal_strategy": "linear",
                        "pct_start": 0.4, "base_momentum": 0.8, "max_momentum": 0.9}),
        ("OneCycleLR", {"max_lr": 0.2, "epochs": 3, "steps_per_epoch": 10, "cycle_momentum": False}),
    ]
    cases = schedule_cases(configs)
    write_json("schedules2.json", {
        "torch_version": torch.__version__,
        "convention": "as schedules.json; OneCycleLR is stepped total_steps - 1 times (lrs[e] for e < total_steps) and "
                      "momentums[e] is SGD's momentum during epoch e when cycle_momentum is on.",
        "cases": cases,
    })
    return len(cases)


# ====================================================================== interop (safetensors)
def save_interop(name, model, x, extra=None):
    model.eval()
    with torch.no_grad():
        y = model(x)
    sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    st_path = os.path.join(OUT_DIR, f"{name}.safetensors")
    save_file(sd, st_path)
    doc = {
        "torch_version": torch.__version__,
        "model": repr(model),
        "dtype": "f32",
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in sd.items()},
        "input": tj(x),
        "output": tj(y),
    }
    if extra:
        doc.update(extra)
    write_json(f"{name}.json", doc)
    print(f"wrote {st_path} ({os.path.getsize(st_path)} bytes), tensors: {list(sd)}")


def gen_interop():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).float()
    x = torch.randn(5, 4)
    save_interop("interop_mlp", mlp, x)

    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=1, padding=0, dilation=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3),
    ).float()
    x = torch.randn(2, 1, 8, 8)
    save_interop("interop_cnn", cnn, x)

    # Conv2d -> BatchNorm2d -> ReLU -> Flatten -> LayerNorm -> Linear, evaluated in eval mode after a few
    # train-mode forward passes (so running_mean / running_var / num_batches_tracked are non-trivial).
    torch.manual_seed(0)
    norm = nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
        nn.LayerNorm(48), nn.Linear(48, 2),
    ).float()
    with torch.no_grad():
        norm[1].weight.uniform_(0.5, 1.5)
        norm[1].bias.uniform_(-0.5, 0.5)
        norm[4].weight.uniform_(0.5, 1.5)
        norm[4].bias.uniform_(-0.5, 0.5)
        norm.train()
        for _ in range(3):
            norm(torch.randn(4, 2, 6, 6) * 2.0 + 0.5)
    x = torch.randn(2, 2, 6, 6)
    save_interop("interop_norm", norm, x, extra={
        "notes": "eval mode; BatchNorm2d eps=1e-5 momentum=0.1 (3 train-mode batches seen); LayerNorm(48) eps=1e-5 "
                 "over the flattened (C,H,W) features",
    })


# ====================================================================== losses
def gen_losses():
    rng = np.random.default_rng(77)
    cases = []

    def run(loss, kwargs, fn, inp, target, target_is_index=False):
        for reduction in ("mean", "sum", "none"):
            x = torch.tensor(inp, dtype=torch.float64, requires_grad=True)
            t = torch.tensor(target, dtype=torch.int64 if target_is_index else torch.float64)
            out = fn(x, t, reduction)
            if reduction == "none":
                go = torch.tensor(rng.standard_normal(tuple(out.shape)), dtype=torch.float64)
            else:
                go = torch.ones((), dtype=torch.float64)
            (gi,) = torch.autograd.grad(out, x, go)
            cases.append({
                "loss": loss, "kwargs": kwargs, "reduction": reduction,
                "input": tj(x), "target": tj(t), "target_dtype": "i64" if target_is_index else "f64",
                "output": tj(out), "grad_output": tj(go), "grad_input": tj(gi),
            })

    shape = (4, 3)
    # MSE
    run("mse", {}, lambda x, t, r: F.mse_loss(x, t, reduction=r), rng.standard_normal(shape), rng.standard_normal(shape))
    # L1: keep |x - t| > 0.05
    x = rng.standard_normal(shape)
    d = rng.uniform(0.1, 1.5, shape) * rng.choice([-1, 1], shape)
    run("l1", {}, lambda x, t, r: F.l1_loss(x, t, reduction=r), x, x - d)
    # SmoothL1: differences in both regions, away from |d| = beta
    for beta in (1.0, 0.5):
        x = rng.standard_normal(shape)
        mags = np.array([0.1, 0.3, 0.7, 1.3, 2.0, 0.2, 0.9, 1.6, 0.05 + 0.01, 0.35, 3.0, 0.8]).reshape(shape)
        d = mags * rng.choice([-1, 1], shape)
        run("smooth_l1", {"beta": beta}, lambda x, t, r, b=beta: F.smooth_l1_loss(x, t, reduction=r, beta=b), x, x - d)
    # BCE on probabilities (hard and soft targets)
    p = rng.uniform(0.05, 0.95, shape)
    t = np.array([1, 0, 1, 0, 0, 1, 0.3, 0.8, 1, 0, 0.5, 1], dtype=np.float64).reshape(shape)
    run("bce", {}, lambda x, t, r: F.binary_cross_entropy(x, t, reduction=r), p, t)
    # BCEWithLogits incl. |logit| = 50 (stability)
    z = rng.standard_normal(shape) * 2.0
    z.reshape(-1)[[0, 1, 2, 3]] = [50.0, -50.0, 50.0, -50.0]
    t = np.array([1, 0, 0, 1, 1, 0, 0.25, 1, 0, 1, 0.5, 0], dtype=np.float64).reshape(shape)
    run("bce_with_logits", {}, lambda x, t, r: F.binary_cross_entropy_with_logits(x, t, reduction=r), z, t)
    # CrossEntropy from logits with class indices
    logits = rng.standard_normal((6, 4)) * 1.5
    tgt = np.array([0, 2, 3, 1, 2, 3])
    run("cross_entropy", {}, lambda x, t, r: F.cross_entropy(x, t, reduction=r), logits, tgt, True)
    run("cross_entropy", {"label_smoothing": 0.1},
        lambda x, t, r: F.cross_entropy(x, t, reduction=r, label_smoothing=0.1), logits, tgt, True)
    run("cross_entropy", {"ignore_index": 2},
        lambda x, t, r: F.cross_entropy(x, t, reduction=r, ignore_index=2), logits, tgt, True)
    # NLLLoss on log-probabilities
    logp = torch.log_softmax(torch.tensor(rng.standard_normal((6, 4))), dim=1).numpy()
    run("nll", {}, lambda x, t, r: F.nll_loss(x, t, reduction=r), logp, tgt, True)
    run("nll", {"ignore_index": 2}, lambda x, t, r: F.nll_loss(x, t, reduction=r, ignore_index=2), logp, tgt, True)
    write_json("losses.json", {
        "torch_version": torch.__version__, "dtype": "f64",
        "convention": "grad_input = d(sum(output * grad_output))/d(input); grad_output is 1.0 (shape []) for "
                      "mean/sum, random normal for none. Targets never receive gradients here.",
        "cases": cases,
    })
    return len(cases)


# ====================================================================== loss edges
def ej(t):
    """Like tj, with non-finite floats as the strings "nan", "inf", "-inf" (JSON has neither)."""
    d = tj(t)
    if torch.as_tensor(t).is_floating_point():
        d["data"] = [v if np.isfinite(v) else ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf"))
                     for v in d["data"]]
    return d


def gen_loss_edges():
    """Losses at the edges of their domains, in float64 and float32: binary cross-entropy at
    probabilities 0 and 1 (logs clamped at -100, gradient (p - t) / max(p(1 - p), 1e-12)) and
    cross-entropy / NLL with every target ignored (mean = NaN, gradient zero)."""
    rng = np.random.default_rng(78)
    cases = []

    def run(loss, kwargs, fn, inp, target, target_is_index=False):
        for dt_name, dt in (("f64", torch.float64), ("f32", torch.float32)):
            for reduction in ("mean", "sum", "none"):
                x = torch.tensor(inp, dtype=dt, requires_grad=True)
                t = torch.tensor(target, dtype=torch.int64 if target_is_index else dt)
                out = fn(x, t, reduction)
                if reduction == "none":
                    go = torch.tensor(rng.standard_normal(tuple(out.shape)), dtype=dt)
                else:
                    go = torch.ones((), dtype=dt)
                (gi,) = torch.autograd.grad(out, x, go)
                cases.append({
                    "loss": loss, "kwargs": kwargs, "reduction": reduction, "dtype": dt_name,
                    "input": ej(x), "target": ej(t), "target_dtype": "i64" if target_is_index else dt_name,
                    "output": ej(out), "grad_output": ej(go), "grad_input": ej(gi),
                })

    # p exactly 0 or 1 against each hard target, a soft target, and p below the 1e-12 bound.
    p = [0.0, 1.0, 0.0, 1.0, 0.5, 1e-13, 0.0, 1.0, 0.2, 1e-30]
    t = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.3, 0.3, 0.7, 0.0]
    run("bce", {}, lambda x, t, r: F.binary_cross_entropy(x, t, reduction=r), p, t)
    logits = rng.standard_normal((3, 4))
    ignored = [-100, -100, -100]
    run("cross_entropy", {"ignore_index": -100},
        lambda x, t, r: F.cross_entropy(x, t, reduction=r, ignore_index=-100), logits, ignored, True)
    run("cross_entropy", {"ignore_index": -100, "label_smoothing": 0.1},
        lambda x, t, r: F.cross_entropy(x, t, reduction=r, ignore_index=-100, label_smoothing=0.1),
        logits, ignored, True)
    logp = torch.log_softmax(torch.tensor(logits), dim=1).numpy()
    run("nll", {"ignore_index": -100}, lambda x, t, r: F.nll_loss(x, t, reduction=r, ignore_index=-100),
        logp, ignored, True)
    path = os.path.join(OUT_DIR, "loss_edges.json")
    with open(path, "w") as fh:
        json.dump({
            "torch_version": torch.__version__,
            "convention": "as losses.json, in both dtypes; non-finite floats are the strings nan, inf, -inf.",
            "cases": cases,
        }, fh, separators=(",", ":"), allow_nan=False)
        fh.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)/1e3:.1f} kB)")
    return len(cases)


# ====================================================================== layers
def layer_case(rng, layer_name, kwargs, module, x, scale, shift, buffers, extra_fn=None, input_is_index=False,
               note=None, call=None):
    """One layers*.json case: `module` in float64 with parameters drawn from `rng` (normal * scale + shift),
    its output on `x` (through `call(module, x)` if given), and the gradients of sum(output * grad_output)
    with grad_output also drawn from `rng`. `buffers` records the buffers before and after the call;
    `extra_fn(rest)` turns a tuple output's other members into extra case keys."""
    module = module.double()
    with torch.no_grad():  # deterministic, non-default parameter values from our rng
        for _, p in module.named_parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape)) * scale + shift, dtype=torch.float64))
    params = {k: tj(p) for k, p in module.named_parameters()}
    buffers_before = {k: tj(b) for k, b in module.named_buffers()}
    if not input_is_index:
        x = x.clone().requires_grad_(True)
    out = call(module, x) if call else module(x)
    extra = {}
    if isinstance(out, tuple):
        out, *rest = out
        if extra_fn:
            extra = extra_fn(rest)
    go = torch.tensor(rng.standard_normal(tuple(out.shape)), dtype=torch.float64)
    names = [k for k, _ in module.named_parameters()]
    wrt = ([] if input_is_index else [x]) + [p for _, p in module.named_parameters()]
    gs = torch.autograd.grad(out, wrt, go, allow_unused=True)
    gin, gps = (None, gs) if input_is_index else (gs[0], gs[1:])
    case = {"layer": layer_name, "kwargs": kwargs, "train": module.training, "params": params}
    if buffers:
        case["buffers_before"] = buffers_before
    case.update({
        "input": tj(x), "input_dtype": "i64" if input_is_index else "f64",
        "output": tj(out), "grad_output": tj(go),
        "grad_input": tj(gin) if gin is not None else None,
        "grad_params": {n: tj(g) for n, g in zip(names, gps)},
    })
    if buffers:
        case["buffers_after"] = {k: tj(b) for k, b in module.named_buffers()}
    case.update(extra)
    if note:
        case["note"] = note
    return case


def gen_layers():
    torch.manual_seed(4321)
    rng = np.random.default_rng(99)
    cases = []

    def randn(*shape):
        return torch.tensor(rng.standard_normal(shape), dtype=torch.float64)

    def run(layer_name, kwargs, module, x, extra_fn=None, input_is_index=False, note=None, call=None):
        cases.append(layer_case(rng, layer_name, kwargs, module, x, scale=0.5, shift=0.0, buffers=True,
                                extra_fn=extra_fn, input_is_index=input_is_index, note=note, call=call))

    kw = dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, dilation=2, groups=2)
    run("Conv1d", kw, nn.Conv1d(**kw), randn(2, 4, 11))
    kw = dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1, dilation=1, groups=1)
    run("Conv2d", kw, nn.Conv2d(**kw), randn(2, 3, 7, 7))
    kw = dict(in_channels=4, out_channels=6, kernel_size=3, stride=1, padding=1, dilation=2, groups=2)
    run("Conv2d", kw, nn.Conv2d(**kw), randn(2, 4, 8, 8))
    kw = dict(in_channels=2, out_channels=3, kernel_size=[2, 3], stride=[1, 2], padding=[0, 1], bias=False)
    run("Conv2d", kw, nn.Conv2d(**kw), randn(1, 2, 5, 6), note="rectangular kernel, no bias")
    kw = dict(kernel_size=2)
    run("MaxPool2d", kw, nn.MaxPool2d(**kw), randn(2, 3, 6, 6), note="stride defaults to kernel_size")
    kw = dict(kernel_size=3, stride=2, padding=1)
    run("MaxPool2d", kw, nn.MaxPool2d(**kw), randn(2, 3, 7, 7), note="padding is -inf; overlapping windows")
    kw = dict(kernel_size=2)
    run("AvgPool2d", kw, nn.AvgPool2d(**kw), randn(2, 3, 6, 6))
    run("AvgPool2d", kw, nn.AvgPool2d(**kw), randn(1, 2, 5, 5), note="odd size: last row/col dropped (floor)")
    kw = dict(normalized_shape=[5], eps=1e-5)
    run("LayerNorm", kw, nn.LayerNorm(**kw), randn(2, 3, 5) * 2.0 + 1.0)
    kw = dict(normalized_shape=[3, 5], eps=1e-5)
    run("LayerNorm", kw, nn.LayerNorm(**kw), randn(2, 3, 5) * 2.0 + 1.0)
    kw = dict(num_embeddings=10, embedding_dim=4)
    run("Embedding", kw, nn.Embedding(**kw), torch.tensor([[1, 7, 1], [0, 9, 7]]), input_is_index=True)
    kw = dict(num_features=4, eps=1e-5, momentum=0.1)
    run("BatchNorm1d", kw, nn.BatchNorm1d(**kw).train(), randn(6, 4) * 1.5 + 0.5,
        note="train mode: normalise with biased batch var; running_var updated with unbiased var")
    run("BatchNorm1d", kw, nn.BatchNorm1d(**kw).train(), randn(3, 4, 5) * 1.5 + 0.5,
        note="train mode, (N,C,L) input: statistics over N and L")

    # MultiheadAttention self-attention
    kw = dict(embed_dim=8, num_heads=2, batch_first=True, dropout=0.0, bias=True)
    L = 5
    causal = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)
    for masked in (False, True):
        mha = nn.MultiheadAttention(**kw)
        x = randn(2, L, 8)

        def call(m, x, masked=masked):
            return m(x, x, x, attn_mask=causal if masked else None, need_weights=True, average_attn_weights=True)

        extra = lambda rest: {"attn_weights": tj(rest[0])}
        run("MultiheadAttention", dict(kw), mha, x, extra_fn=extra, call=call,
            note="self-attention query=key=value=input (grad_input sums all three uses); attn_mask bool "
                 "[L,L] with True = masked (strict upper triangle) when causal; attn_weights averaged over heads")
        cases[-1]["causal"] = masked
        cases[-1]["attn_mask"] = tj(causal) if masked else None
    write_json("layers.json", {"torch_version": torch.__version__, "dtype": "f64", "cases": cases})
    return len(cases)


# ====================================================================== activations (part "activations")
def gen_activations():
    """Activation functions with values, input gradients and second-order gradients, including the
    kinks where torch's backward picks a side (hardtanh at its bounds, hardswish at ±3, elu at 0)."""
    rng = np.random.default_rng(2026)
    cases = []

    def run(name, kwargs, fn, inp):
        x = torch.tensor(inp, dtype=torch.float64, requires_grad=True)
        out = fn(x)
        go = torch.tensor(rng.standard_normal(tuple(out.shape)), dtype=torch.float64)
        (gi,) = torch.autograd.grad(out, x, go, create_graph=True)
        v = torch.tensor(rng.standard_normal(tuple(x.shape)), dtype=torch.float64)
        if gi.requires_grad:
            (g2,) = torch.autograd.grad((gi * v).sum(), x, allow_unused=True)
            if g2 is None:
                g2 = torch.zeros_like(x)
        else:
            g2 = torch.zeros_like(x)
        cases.append({
            "activation": name, "kwargs": kwargs, "input": tj(x), "output": tj(out),
            "grad_output": tj(go), "grad_input": tj(gi), "v": tj(v), "grad2_input": tj(g2),
        })

    base = list(rng.standard_normal(12) * 2.5)
    kinks = [0.0, -3.0, 3.0, -1.0, 1.0, -0.5, 2.0, 25.0, -25.0, 800.0, -800.0]
    x = np.array(base + kinks)
    run("elu", {"alpha": 1.0}, lambda x: F.elu(x), x)
    run("elu", {"alpha": 0.5}, lambda x: F.elu(x, alpha=0.5), x)
    run("selu", {}, lambda x: F.selu(x), x)
    run("hardtanh", {"min_val": -1.0, "max_val": 1.0}, lambda x: F.hardtanh(x), x)
    run("hardtanh", {"min_val": -0.5, "max_val": 2.0}, lambda x: F.hardtanh(x, -0.5, 2.0), x)
    run("hardswish", {}, lambda x: F.hardswish(x), x)
    # torch's mish double backward overflows to NaN at |x| = 800 (exp(800)); 60 is as linear and finite.
    run("mish", {}, lambda x: F.mish(x), np.where(np.abs(x) == 800.0, np.sign(x) * 60.0, x))
    run("logsigmoid", {}, lambda x: F.logsigmoid(x), x)
    run("softsign", {}, lambda x: F.softsign(x), x)
    g = rng.standard_normal((3, 4, 2)) * 2.0
    run("glu", {"dim": 1}, lambda x: F.glu(x, dim=1), g)
    run("glu", {"dim": -1}, lambda x: F.glu(x, dim=-1), g)
    run("glu", {"dim": 0}, lambda x: F.glu(x, dim=0), rng.standard_normal((4, 3)))
    write_json("activations.json", {
        "torch_version": torch.__version__, "dtype": "f64",
        "convention": "grad_input = d(sum(output * grad_output))/d(input); grad2_input = "
                      "d(sum(grad_input * v))/d(input) (second order; zeros where torch's graph ends).",
        "cases": cases,
    })
    return len(cases)


# ====================================================================== more losses (part "losses2")
def gen_losses2():
    """Class weights, soft (probability) targets, [N, C, d...] inputs, BCE with logits pos_weight /
    weight, KL divergence, Huber, and the kinks of smooth L1 and Huber (|d| = 0 and |d| = beta)."""
    rng = np.random.default_rng(79)
    cases = []

    def run(loss, kwargs, fn, inp, target, target_is_index=False, tensors=None,
            reductions=("mean", "sum", "none")):
        tensors = tensors or {}
        for reduction in reductions:
            x = torch.tensor(inp, dtype=torch.float64, requires_grad=True)
            t = torch.tensor(target, dtype=torch.int64 if target_is_index else torch.float64)
            tt = {k: torch.tensor(v, dtype=torch.float64) for k, v in tensors.items()}
            out = fn(x, t, reduction, **tt)
            if reduction == "none":
                go = torch.tensor(rng.standard_normal(tuple(out.shape)), dtype=torch.float64)
            else:
                go = torch.ones((), dtype=torch.float64)
            (gi,) = torch.autograd.grad(out, x, go)
            cases.append({
                "loss": loss, "kwargs": kwargs, "reduction": reduction,
                "tensors": {k: tj(v) for k, v in tt.items()},
                "input": tj(x), "target": tj(t), "target_dtype": "i64" if target_is_index else "f64",
                "output": tj(out), "grad_output": tj(go), "grad_input": tj(gi),
            })

    logits = rng.standard_normal((6, 4)) * 1.5
    tgt = np.array([0, 2, 3, 1, 2, 3])
    w = np.array([0.3, 1.0, 2.5, 0.7])
    CE = "cross_entropy"
    run(CE, {}, lambda x, t, r, weight: F.cross_entropy(x, t, weight=weight, reduction=r), logits, tgt, True,
        {"weight": w})
    run(CE, {"ignore_index": 2}, lambda x, t, r, weight: F.cross_entropy(x, t, weight=weight, reduction=r,
        ignore_index=2), logits, tgt, True, {"weight": w})
    run(CE, {"label_smoothing": 0.1}, lambda x, t, r, weight: F.cross_entropy(
        x, t, weight=weight, reduction=r, label_smoothing=0.1), logits, tgt, True, {"weight": w})
    run(CE, {"label_smoothing": 0.2, "ignore_index": 3}, lambda x, t, r, weight: F.cross_entropy(
        x, t, weight=weight, reduction=r, label_smoothing=0.2, ignore_index=3), logits, tgt, True, {"weight": w})
    # soft targets: rows of probabilities
    probs = torch.softmax(torch.tensor(rng.standard_normal((6, 4)) * 2.0), dim=1).numpy()
    run(CE, {}, lambda x, t, r: F.cross_entropy(x, t, reduction=r), logits, probs)
    run(CE, {}, lambda x, t, r, weight: F.cross_entropy(x, t, weight=weight, reduction=r), logits, probs,
        tensors={"weight": w})
    run(CE, {"label_smoothing": 0.1}, lambda x, t, r, weight: F.cross_entropy(
        x, t, weight=weight, reduction=r, label_smoothing=0.1), logits, probs, tensors={"weight": w})
    # [N, C, d1, d2] inputs
    lk = rng.standard_normal((2, 4, 3, 2)) * 1.5
    tk = rng.integers(0, 4, (2, 3, 2))
    tk[0, 1, 1] = 1
    tk[1, 2, 0] = 1
    run(CE, {}, lambda x, t, r: F.cross_entropy(x, t, reduction=r), lk, tk, True)
    run(CE, {"ignore_index": 1, "label_smoothing": 0.1}, lambda x, t, r, weight: F.cross_entropy(
        x, t, weight=weight, reduction=r, ignore_index=1, label_smoothing=0.1), lk, tk, True, {"weight": w})
    pk = torch.softmax(torch.tensor(rng.standard_normal((2, 4, 3, 2))), dim=1).numpy()
    run(CE, {}, lambda x, t, r, weight: F.cross_entropy(x, t, weight=weight, reduction=r), lk, pk,
        tensors={"weight": w})
    # [N, C, d1]
    l3 = rng.standard_normal((3, 4, 5))
    t3 = rng.integers(0, 4, (3, 5))
    run(CE, {}, lambda x, t, r: F.cross_entropy(x, t, reduction=r), l3, t3, True)
    # unbatched: [C] with a scalar target
    run(CE, {}, lambda x, t, r, weight: F.cross_entropy(x, t, weight=weight, reduction=r),
        rng.standard_normal(4), np.array(2), True, {"weight": w})
    # NLL with weights, also on [N, C, d1, d2]
    logp = torch.log_softmax(torch.tensor(logits), dim=1).numpy()
    run("nll", {}, lambda x, t, r, weight: F.nll_loss(x, t, weight=weight, reduction=r), logp, tgt, True,
        {"weight": w})
    run("nll", {"ignore_index": 0}, lambda x, t, r, weight: F.nll_loss(x, t, weight=weight, reduction=r,
        ignore_index=0), torch.log_softmax(torch.tensor(lk), dim=1).numpy(), tk, True, {"weight": w})
    # BCE with logits: pos_weight per class, weight per element / per class; logits exactly 0 included
    z = rng.standard_normal((4, 3)) * 2.0
    z.reshape(-1)[[0, 1, 2, 3]] = [0.0, 0.0, 40.0, -40.0]
    tb = np.array([1, 0, 0, 1, 1, 0, 0.25, 1, 0, 1, 0.5, 0], dtype=np.float64).reshape(4, 3)
    pw = np.array([2.0, 0.5, 1.5])
    BL = "bce_with_logits"
    run(BL, {}, lambda x, t, r: F.binary_cross_entropy_with_logits(x, t, reduction=r), z, tb)
    run(BL, {}, lambda x, t, r, pos_weight: F.binary_cross_entropy_with_logits(
        x, t, pos_weight=pos_weight, reduction=r), z, tb, tensors={"pos_weight": pw})
    run(BL, {}, lambda x, t, r, weight, pos_weight: F.binary_cross_entropy_with_logits(
        x, t, weight=weight, pos_weight=pos_weight, reduction=r), z, tb,
        tensors={"weight": rng.uniform(0.2, 2.0, (4, 3)), "pos_weight": pw})
    run(BL, {}, lambda x, t, r, weight: F.binary_cross_entropy_with_logits(
        x, t, weight=weight, reduction=r), z, tb, tensors={"weight": np.array([0.5, 1.0, 3.0])})
    # BCE on probabilities with weight
    p = rng.uniform(0.05, 0.95, (4, 3))
    run("bce", {}, lambda x, t, r, weight: F.binary_cross_entropy(x, t, weight=weight, reduction=r), p, tb,
        tensors={"weight": rng.uniform(0.2, 2.0, (4, 3))})
    # KL divergence: input log-probabilities, target probabilities (with zeros) or log-probabilities
    li = torch.log_softmax(torch.tensor(rng.standard_normal((3, 5))), dim=1).numpy()
    pt = torch.softmax(torch.tensor(rng.standard_normal((3, 5)) * 2.0), dim=1).numpy()
    pt[0, 1] = 0.0
    pt[2, 4] = 0.0
    reds = ("mean", "sum", "none", "batchmean")
    run("kl_div", {"log_target": False}, lambda x, t, r: F.kl_div(x, t, reduction=r), li, pt, reductions=reds)
    lt = torch.log_softmax(torch.tensor(rng.standard_normal((3, 5))), dim=1).numpy()
    run("kl_div", {"log_target": True}, lambda x, t, r: F.kl_div(x, t, reduction=r, log_target=True), li, lt,
        reductions=reds)
    # Huber and smooth L1, including differences of exactly 0 and exactly delta / beta
    for delta in (1.0, 0.5):
        xh = rng.standard_normal((3, 4))
        mags = np.array([0.0, 0.3, delta, 1.3, 2.0, 0.2, 0.9, 1.6, delta, 0.35, 3.0, 0.0]).reshape(3, 4)
        d = mags * np.array([1, -1, 1, 1, -1, 1, -1, 1, -1, 1, 1, -1]).reshape(3, 4)
        xh = np.round(xh * 8) / 8  # dyadic, so x - d is exact and |x - t| is exactly delta
        run("huber", {"delta": delta}, lambda x, t, r, dl=delta: F.huber_loss(x, t, reduction=r, delta=dl),
            xh, xh - d)
        run("smooth_l1", {"beta": delta}, lambda x, t, r, b=delta: F.smooth_l1_loss(x, t, reduction=r, beta=b),
            xh, xh - d)
    write_json("losses2.json", {
        "torch_version": torch.__version__, "dtype": "f64",
        "convention": "as losses.json; tensors holds tensor keyword arguments (weight, pos_weight); target_dtype "
                      "f64 with cross_entropy means probability targets.",
        "cases": cases,
    })
    return len(cases)


# ====================================================================== more layers (part "layers2")
def gen_layers2():
    """GroupNorm, RMSNorm, InstanceNorm1d/2d (affine or not, batched and unbatched) and Embedding
    with padding_idx, in layers.json's format."""
    rng = np.random.default_rng(101)
    cases = []

    def randn(*shape):
        return torch.tensor(rng.standard_normal(shape), dtype=torch.float64)

    def run(layer_name, kwargs, module, x, input_is_index=False, note=None):
        # (the padding row of an Embedding gets random values too: torch keeps its value)
        cases.append(layer_case(rng, layer_name, kwargs, module, x, scale=0.5, shift=0.5, buffers=False,
                                input_is_index=input_is_index, note=note))

    kw = dict(num_groups=2, num_channels=6, eps=1e-5, affine=True)
    run("GroupNorm", kw, nn.GroupNorm(**kw), randn(3, 6, 5) * 2.0 + 1.0)
    run("GroupNorm", kw, nn.GroupNorm(**kw), randn(2, 6, 3, 3) * 2.0 + 1.0)
    kw = dict(num_groups=3, num_channels=6, eps=1e-3, affine=False)
    run("GroupNorm", kw, nn.GroupNorm(**kw), randn(2, 6, 4))
    kw = dict(num_groups=1, num_channels=4, eps=1e-5, affine=True)
    run("GroupNorm", kw, nn.GroupNorm(**kw), randn(3, 4), note="[N, C] input, one group")
    kw = dict(normalized_shape=[5], eps=None)
    run("RMSNorm", kw, nn.RMSNorm([5]), randn(2, 3, 5) * 2.0 + 1.0, note="eps None = finfo(float64).eps")
    kw = dict(normalized_shape=[3, 5], eps=1e-6)
    run("RMSNorm", kw, nn.RMSNorm([3, 5], eps=1e-6), randn(2, 3, 5))
    kw = dict(normalized_shape=[4], eps=1e-5, elementwise_affine=False)
    run("RMSNorm", kw, nn.RMSNorm([4], eps=1e-5, elementwise_affine=False), randn(3, 4))
    kw = dict(num_features=4, eps=1e-5, affine=True)
    run("InstanceNorm1d", kw, nn.InstanceNorm1d(**kw), randn(2, 4, 7) * 1.5 + 0.5)
    kw = dict(num_features=3, eps=1e-5, affine=False)
    run("InstanceNorm2d", kw, nn.InstanceNorm2d(**kw), randn(2, 3, 4, 5) * 1.5 + 0.5)
    kw = dict(num_features=3, eps=1e-3, affine=True)
    run("InstanceNorm2d", kw, nn.InstanceNorm2d(**kw), randn(3, 4, 5), note="unbatched [C, H, W]")
    kw = dict(num_features=4, eps=1e-5, affine=False)
    run("InstanceNorm1d", kw, nn.InstanceNorm1d(**kw), randn(4, 6), note="unbatched [C, L]")
    kw = dict(num_embeddings=10, embedding_dim=4, padding_idx=2)
    run("Embedding", kw, nn.Embedding(**kw), torch.tensor([[1, 2, 7], [2, 9, 2]]), input_is_index=True,
        note="padding row set to non-zero values: forward returns them, their gradient is 0")
    kw = dict(num_embeddings=6, embedding_dim=3, padding_idx=-1)
    run("Embedding", kw, nn.Embedding(**kw), torch.tensor([5, 0, 5, 3]), input_is_index=True,
        note="padding_idx -1 is row 5")
    write_json("layers2.json", {"torch_version": torch.__version__, "dtype": "f64", "cases": cases})
    return len(cases)


# ====================================================================== transposed convs, pooling, batch norm (part "layers3")
def gen_layers3():
    """ConvTranspose1d/2d (stride, padding, output_padding, dilation, groups, bias), MaxPool1d/AvgPool1d,
    ceil_mode and count_include_pad / divisor_override of the pooling layers, and BatchNorm without
    affine parameters and/or running statistics, in layers.json's format."""
    rng = np.random.default_rng(303)
    cases = []

    def randn(*shape):
        return torch.tensor(rng.standard_normal(shape), dtype=torch.float64)

    def run(layer_name, kwargs, module, x, note=None, train=True):
        module.train(train)
        cases.append(layer_case(rng, layer_name, kwargs, module, x, scale=0.5, shift=0.0, buffers=True, note=note))

    CT1, CT2 = "ConvTranspose1d", "ConvTranspose2d"
    for kw, shape, note in [
        (dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, output_padding=1, groups=2), (2, 4, 5),
         None),
        (dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=2, output_padding=2, dilation=3,
              bias=False), (2, 2, 4), "output_padding >= stride (allowed: below the dilation)"),
        (dict(in_channels=3, out_channels=2, kernel_size=1, stride=3, padding=1, output_padding=2), (1, 3, 2),
         "padding cuts past the last tap: trailing output positions are bias only"),
    ]:
        run(CT1, kw, nn.ConvTranspose1d(**kw), randn(*shape), note)
    for kw, shape, note in [
        (dict(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=1, output_padding=1), (2, 3, 4, 4), None),
        (dict(in_channels=4, out_channels=2, kernel_size=[2, 3], stride=[1, 2], padding=[0, 2], output_padding=[0, 1],
              dilation=[2, 1], groups=2), (1, 4, 3, 5), "rectangular, grouped, dilated"),
        (dict(in_channels=2, out_channels=2, kernel_size=2, bias=False), (2, 2, 3, 3), "defaults, no bias"),
    ]:
        run(CT2, kw, nn.ConvTranspose2d(**kw), randn(*shape), note)
    # forward(x, output_size=...): the output padding comes from the requested size instead.
    for cls, name, kw, shape, size in [
        (nn.ConvTranspose2d, CT2, dict(in_channels=2, out_channels=3, kernel_size=3, stride=[3, 2], padding=1), (1, 2, 3, 4),
         [8, 8]),
        (nn.ConvTranspose2d, CT2, dict(in_channels=2, out_channels=2, kernel_size=2, stride=2, output_padding=1),
         (2, 2, 3, 3), [2, 2, 6, 7]),
        (nn.ConvTranspose1d, CT1, dict(in_channels=2, out_channels=2, kernel_size=3, stride=3, dilation=2), (2, 2, 4),
         [15]),
    ]:
        case = layer_case(rng, name, kw, cls(**kw), randn(*shape), scale=0.5, shift=0.0, buffers=True,
                          note=f"forward(x, output_size={size})", call=lambda m, x, size=size: m(x, output_size=size))
        case["output_size"] = size
        cases.append(case)

    for cls, name, kw, shape in [
        (nn.MaxPool1d, "MaxPool1d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 9)),
        (nn.MaxPool1d, "MaxPool1d", dict(kernel_size=3, stride=2, ceil_mode=True), (2, 3, 8)),
        (nn.MaxPool1d, "MaxPool1d", dict(kernel_size=2, stride=3, padding=1, dilation=2, ceil_mode=True), (1, 2, 10)),
        (nn.MaxPool2d, "MaxPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 2, 6, 7)),
        (nn.MaxPool2d, "MaxPool2d", dict(kernel_size=[2, 3], stride=[2, 2], ceil_mode=True), (1, 2, 5, 6)),
        (nn.AvgPool1d, "AvgPool1d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 8)),
        (nn.AvgPool1d, "AvgPool1d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), (2, 3, 8)),
        (nn.AvgPool1d, "AvgPool1d", dict(kernel_size=4, stride=3, padding=1, ceil_mode=True), (1, 2, 9)),
        (nn.AvgPool1d, "AvgPool1d", dict(kernel_size=4, stride=3, padding=2, ceil_mode=True, count_include_pad=False),
         (1, 2, 9)),
        (nn.AvgPool2d, "AvgPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 2, 6, 7)),
        (nn.AvgPool2d, "AvgPool2d", dict(kernel_size=[3, 2], stride=[2, 1], padding=[1, 1], count_include_pad=False),
         (1, 3, 5, 4)),
        (nn.AvgPool2d, "AvgPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
         (2, 2, 6, 7)),
        (nn.AvgPool2d, "AvgPool2d", dict(kernel_size=2, stride=2, padding=1, divisor_override=3), (1, 2, 5, 5)),
    ]:
        run(name, kw, cls(**kw), randn(*shape))

    for cls, name, kw, shape, train in [
        (nn.BatchNorm1d, "BatchNorm1d", dict(num_features=4, affine=False), (6, 4), True),
        (nn.BatchNorm1d, "BatchNorm1d", dict(num_features=3, track_running_stats=False), (4, 3, 5), True),
        (nn.BatchNorm1d, "BatchNorm1d", dict(num_features=3, track_running_stats=False), (4, 3, 5), False),
        (nn.BatchNorm2d, "BatchNorm2d", dict(num_features=3, affine=False, track_running_stats=False, eps=1e-3),
         (2, 3, 4, 3), False),
        (nn.BatchNorm2d, "BatchNorm2d", dict(num_features=2, affine=False, momentum=0.3), (3, 2, 3, 3), True),
    ]:
        run(name, kw, cls(**kw), randn(*shape) * 1.5 + 0.5,
            "eval mode without running statistics normalises with the batch" if not train else None, train)
    # momentum=None is a cumulative average: after two earlier batches (num_batches_tracked = 2) this
    # batch enters the running statistics with weight 1/3, which no fixed momentum reproduces.
    bn = nn.BatchNorm1d(3, momentum=None).double().train()
    with torch.no_grad():
        for _ in range(2):
            bn(randn(4, 3) * 2.0 - 1.0)
    run("BatchNorm1d", dict(num_features=3, momentum=None), bn, randn(5, 3, 2) * 1.5 + 0.5,
        "momentum=None after two batches: cumulative average, factor 1/3")
    write_json("layers3.json", {"torch_version": torch.__version__, "dtype": "f64", "cases": cases})
    return len(cases)


# ====================================================================== attention (part "attention")
def gen_attention():
    """MultiheadAttention beyond self-attention: key_padding_mask (bool and float), attn_mask
    ([L, S] bool, [B*H, L, S] float), cross-attention with L != S, kdim/vdim, bias=False,
    sequence-first inputs, per-head weights, add_bias_kv / add_zero_attn and unbatched [L, E] inputs."""
    rng = np.random.default_rng(505)
    cases = []

    def randn(*shape):
        return torch.tensor(rng.standard_normal(shape), dtype=torch.float64)

    def run(kwargs, q, k, v, kpm=None, attn_mask=None, average=True, note=None):
        m = nn.MultiheadAttention(**kwargs).double()
        with torch.no_grad():
            for _, p in m.named_parameters():
                p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape)) * 0.5, dtype=torch.float64))
        params = {n: tj(p) for n, p in m.named_parameters()}
        self_attn = k is None
        ins = [q.clone().requires_grad_(True)] if self_attn else [t.clone().requires_grad_(True) for t in (q, k, v)]
        qi, ki, vi = (ins[0], ins[0], ins[0]) if self_attn else ins
        out, w = m(qi, ki, vi, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=True,
                   average_attn_weights=average)
        go = randn(*out.shape)
        names = [n for n, _ in m.named_parameters()]
        gs = torch.autograd.grad(out, ins + [p for _, p in m.named_parameters()], go)
        ni = len(ins)
        cases.append({
            "kwargs": kwargs, "self_attention": self_attn, "average_attn_weights": average, "params": params,
            "inputs": [tj(t) for t in ins],
            "key_padding_mask": None if kpm is None else tj(kpm),
            "attn_mask": None if attn_mask is None else tj(attn_mask),
            "mask_dtypes": [None if t is None else ("u8" if t.dtype == torch.bool else "f64") for t in (kpm, attn_mask)],
            "output": tj(out), "attn_weights": tj(w), "grad_output": tj(go),
            "grad_inputs": [tj(g) for g in gs[:ni]],
            "grad_params": {n: tj(g) for n, g in zip(names, gs[ni:])},
            "note": note,
        })

    B, L, S, E = 2, 4, 5, 8
    kpm = torch.tensor([[False, False, False, True], [False, True, False, False]])
    run(dict(embed_dim=E, num_heads=2, batch_first=True), randn(B, L, E), None, None, kpm=kpm,
        note="self-attention with a bool key_padding_mask (True = padding)")
    kpm_s = torch.tensor([[False, False, True, False, True], [False, False, False, False, False]])
    causalish = torch.triu(torch.ones(L, S, dtype=torch.bool), diagonal=2)
    run(dict(embed_dim=E, num_heads=4, batch_first=True), randn(B, L, E), randn(B, S, E), randn(B, S, E),
        kpm=kpm_s, attn_mask=causalish, note="cross-attention L=4, S=5; bool [L, S] attn_mask and key_padding_mask")
    run(dict(embed_dim=E, num_heads=2, kdim=5, vdim=3, batch_first=False), randn(L, B, E), randn(S, B, 5),
        randn(S, B, 3), attn_mask=randn(B * 2, L, S), average=False,
        note="kdim 5, vdim 3 (separate q/k/v projection weights), sequence-first, float [B*H, L, S] mask, per-head weights")
    run(dict(embed_dim=6, num_heads=3, bias=False, batch_first=True), randn(B, 3, 6), randn(B, S, 6), randn(B, S, 6),
        kpm=randn(B, S), note="bias=False; float key_padding_mask added to the scores")
    run(dict(embed_dim=E, num_heads=2, batch_first=True, add_bias_kv=True, add_zero_attn=True), randn(B, 3, E),
        randn(B, S, E), randn(B, S, E), kpm=kpm_s, attn_mask=torch.triu(torch.ones(3, S, dtype=torch.bool), diagonal=1),
        note="add_bias_kv and add_zero_attn: two extra key columns, masks padded with unmasked columns")
    run(dict(embed_dim=6, num_heads=3, add_zero_attn=True), randn(L, 6), None, None,
        kpm=torch.tensor([False, True, False, False]), average=False,
        note="unbatched [L, E] self-attention, [S] key_padding_mask, per-head weights, add_zero_attn")
    run(dict(embed_dim=E, num_heads=2, kdim=5, vdim=3, add_bias_kv=True), randn(3, E), randn(S, 5), randn(S, 3),
        attn_mask=randn(2, 3, S), note="unbatched cross-attention with kdim/vdim, float [H, L, S] attn_mask, add_bias_kv")
    write_json("attention.json", {"torch_version": torch.__version__, "dtype": "f64", "cases": cases})
    return len(cases)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.set_num_threads(1)
    parts = {"optim": gen_optim, "schedules": gen_schedules, "interop": gen_interop, "losses": gen_losses,
             "loss_edges": gen_loss_edges, "layers": gen_layers, "activations": gen_activations,
             "losses2": gen_losses2, "layers2": gen_layers2,
             "layers3": gen_layers3, "optim2": gen_optim2,
             "schedules2": gen_schedules2, "attention": gen_attention}
    which = sys.argv[1:] or list(parts)
    unknown = [w for w in which if w not in parts]
    if unknown:
        sys.exit(f"unknown part(s) {unknown}; choose from {list(parts)}")
    for w in which:
        n = parts[w]()
        if n is not None:
            print(f"  {w}: {n} cases")


if __name__ == "__main__":
    main()
