#!/usr/bin/env python3
"""Headroom study for kiln on IWLS 2020 (validation accuracy, train on train only).

For each requested function, sweeps model families that compile to an AIG and
reports, per family, the best configuration whose AND count is <= 5000:

  dt     DecisionTree: criterion gini/entropy x min_samples_leaf {1,5}
         x (max_depth 4..16 | max_leaf_nodes 32..1024).
  xor    DecisionTree on inputs + pairwise XORs of the top-k inputs (k=12;
         k by DT feature importance on train); every XOR used costs 3 ANDs.
  rf/et  RandomForest / ExtraTrees, 31 trees fitted once per (max_features,
         limit) and evaluated as prefixes T=3,5,..,31 with HARD majority vote
         (what an AIG computes), limit = max_depth 8/10/12 or max_leaf_nodes
         32/64/128, max_features sqrt/0.3/None (ET: sqrt/0.3).
  gb     GradientBoosting (sklearn, exact splits) depth 1..4, lr 0.3,
         staged T=5..100; leaf values quantised to b=3..6-bit integers, decision
         = sum of integer leaves >= constant (accuracy of the QUANTISED model).
  lr     L1/L2 logistic regression, weights quantised to b=3..8 bits
         (= a linear threshold gate, what kiln's threshold-unit is).
  mlp    1-hidden-layer MLP (relu, H=8,32) - accuracy hint only; cost is a
         rough estimate (H threshold units of 4-bit weights + output unit).
  knn    k-NN (Hamming) - upper-bound hint only, no AIG.

AND counts (dt/xor/rf/et/gb/lr) are EXACT for the AIG this script builds with
the structurally hashed builder of scripts/iwls_baselines.py (mux per tree node,
constant folding, carry-save adder of the weighted bits + comparator against a
constant); no ABC optimisation, so they are upper bounds.  Every built AIG is
checked against the numpy prediction on the validation set.

Run (one function at a time keeps memory small; ~1-4 min per function):
  cd /work/main && OMP_NUM_THREADS=1 nice -n 10 /tmp/peers/bin/python \
     bench-results/iwls-research-2026-11-30c/research.py --only ex80,ex81 \
     --out bench-results/iwls-research-2026-11-30c/json [--families dt,rf,gb]
Then: /tmp/peers/bin/python bench-results/iwls-research-2026-11-30c/report.py
"""
import argparse
import json
import os
import sys
import time

import warnings

import numpy as np

warnings.filterwarnings("ignore")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
from iwls_baselines import Aig, aig_eval, read_pla  # noqa: E402

DATA = "/work/shared/iwls2020"
BUDGET = 5000


# ------------------------------------------------------------------ AIG helpers
def colsum(aig, cols):
    """cols: {weight_exp: [lits]} -> LSB-first bits of the sum (carry-save)."""
    cols = {k: list(v) for k, v in cols.items() if v}
    if not cols:
        return []
    w = 0
    top = max(cols)
    out = []
    while w <= top or w in cols:
        col = cols.get(w, [])
        while len(col) > 1:
            if len(col) >= 3:
                a, b, c = col.pop(0), col.pop(0), col.pop(0)
                t = aig.XOR(a, b)
                col.append(aig.XOR(t, c))
                cols.setdefault(w + 1, []).append(aig.OR(aig.AND(a, b), aig.AND(c, t)))
            else:
                a, b = col.pop(0), col.pop(0)
                col.append(aig.XOR(a, b))
                cols.setdefault(w + 1, []).append(aig.AND(a, b))
            top = max(top, w + 1)
        out.append(col[0] if col else 0)
        w += 1
    return out


def ge_const(aig, bits, k):
    """unsigned(bits) >= k."""
    if k <= 0:
        return 1
    w = max(len(bits), int(k).bit_length())
    if int(k).bit_length() > len(bits):
        return 0
    p = list(bits) + [0] * (w - len(bits))
    ge = 1  # empty suffix: equal -> >=
    for i in range(w):  # LSB first: ge_i = p>k at bit i, or equal and ge_{i-1}
        kb = (k >> i) & 1
        if kb:
            ge = aig.AND(p[i], ge)
        else:
            ge = aig.OR(p[i], ge)
    return ge


def tree_lits(aig, tree, feat_lits, leaf_fn):
    """leaf_fn(node) -> literal constant (0/1). Returns literal of the tree."""
    t = tree.tree_
    memo = {}

    def build(node):
        if node in memo:
            return memo[node]
        l, r = t.children_left[node], t.children_right[node]
        if l == -1:
            lit = leaf_fn(node)
        else:
            lit = aig.MUX(feat_lits[int(t.feature[node])], build(r), build(l))
        memo[node] = lit
        return lit

    return build(0)


def leaf_class(tree):
    t = tree.tree_
    cls = tree.classes_ if hasattr(tree, "classes_") else np.array([0, 1])
    return lambda node: int(cls[int(np.argmax(t.value[node][0]))])


def weighted_trees_aig(n, trees, int_leaves, thr, feat_lits_fn=None):
    """sum_t leafint_t(x) >= thr. int_leaves[t]: array node->int (any sign)."""
    aig = Aig(n)
    feat = [aig.inp(i) for i in range(n)] if feat_lits_fn is None else feat_lits_fn(aig)
    cols = {}
    k = thr
    for tree, q in zip(trees, int_leaves):
        t = tree.tree_
        leaves = t.children_left == -1
        mn = int(q[leaves].min())
        k -= mn
        qq = q - mn
        mx = int(qq[leaves].max())
        for j in range(max(mx.bit_length(), 0)):
            lit = tree_lits(aig, tree, feat, lambda node, j=j: int((int(qq[node]) >> j) & 1))
            cols.setdefault(j, []).append(lit)
    out = ge_const(aig, colsum(aig, cols), k)
    return aig, out


def linear_aig(n, q, k, feat_lits=None):
    """sum_i q_i x_i >= k, q integer."""
    aig = Aig(n)
    lits = [aig.inp(i) for i in range(n)] if feat_lits is None else feat_lits(aig)
    cols = {}
    for i, w in enumerate(q):
        w = int(w)
        if w == 0:
            continue
        l = lits[i]
        if w < 0:
            l ^= 1
            k += -w  # w*x = |w|*(!x) - |w|
            w = -w
        for j in range(w.bit_length()):
            if (w >> j) & 1:
                cols.setdefault(j, []).append(l)
    return aig, ge_const(aig, colsum(aig, cols), k)


# ------------------------------------------------------------------ families
def acc_of(pred, y):
    return float((np.asarray(pred).astype(np.uint8) == y).mean())


def fam_dt(xtr, ytr, xva, yva, feats=None, tag="dt"):
    from sklearn.tree import DecisionTreeClassifier
    cands = []
    for crit in ("gini", "entropy"):
        for msl in (1, 5):
            lim = [("max_depth", d) for d in range(4, 17)] + \
                  [("max_leaf_nodes", m) for m in (32, 64, 128, 256, 512, 1024)]
            prev_nodes = None
            for key, v in lim:
                if key == "max_depth" and prev_nodes == "stop":
                    continue
                clf = DecisionTreeClassifier(criterion=crit, min_samples_leaf=msl, random_state=0, **{key: v})
                clf.fit(xtr, ytr)
                if key == "max_depth" and clf.get_depth() < v:
                    prev_nodes = "stop"
                a = acc_of(clf.predict(xva), yva)
                est = 3 * (clf.get_n_leaves() - 1)
                cands.append((a, est, dict(criterion=crit, min_samples_leaf=msl, **{key: v}), clf))
    return cands


def best_exact(cands, build, verify, limit=25):
    """cands: (acc, est, params, model); build(model)->(aig,out). First by acc with exact<=BUDGET."""
    cands = sorted(cands, key=lambda c: (-c[0], c[1]))
    tried = 0
    for a, est, p, m in cands:
        if est > 2.5 * BUDGET:
            continue
        aig, out = build(m)
        ands = aig.count(out)
        tried += 1
        if ands <= BUDGET:
            ok = verify(aig, out, m)
            return dict(acc=a, ands=ands, params=p, verified=bool(ok))
        if tried >= limit:
            break
    return None


def run_dt(xtr, ytr, xva, yva):
    cands = fam_dt(xtr, ytr, xva, yva)
    n = xtr.shape[1]

    def build(clf):
        aig = Aig(n)
        return aig, tree_lits(aig, clf, [aig.inp(i) for i in range(n)], leaf_class(clf))

    def verify(aig, out, clf):
        return (aig_eval(aig, out, xva) == (clf.predict(xva) == 1)).all()

    return best_exact(cands, build, verify)


def xor_features(x, pairs):
    if not pairs:
        return x
    return np.hstack([x] + [(x[:, [i]] ^ x[:, [j]]) for i, j in pairs])


def run_xor(xtr, ytr, xva, yva):
    from sklearn.tree import DecisionTreeClassifier
    n = xtr.shape[1]
    base = DecisionTreeClassifier(max_depth=10, random_state=0).fit(xtr, ytr)
    order = np.argsort(-base.feature_importances_)
    best = None
    for k in (12,):
        top = [int(i) for i in order[:k]]
        pairs = [(top[a], top[b]) for a in range(k) for b in range(a + 1, k)]
        ftr, fva = xor_features(xtr, pairs), xor_features(xva, pairs)
        cands = fam_dt(ftr, ytr, fva, yva)

        def featlits(aig, pairs=pairs):
            base_l = [aig.inp(i) for i in range(n)]
            return base_l + [aig.XOR(base_l[i], base_l[j]) for i, j in pairs]

        def build(clf, featlits=featlits):
            aig = Aig(n)
            return aig, tree_lits(aig, clf, featlits(aig), leaf_class(clf))

        def verify(aig, out, clf, fva=fva):
            return (aig_eval(aig, out, xva) == (clf.predict(fva) == 1)).all()

        r = best_exact(cands, build, verify)
        if r and (best is None or r["acc"] > best["acc"]):
            r["params"]["xor_topk"] = k
            best = r
    return best


def run_forest(xtr, ytr, xva, yva, kind, fast=False):
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    n = xtr.shape[1]
    Cls = RandomForestClassifier if kind == "rf" else ExtraTreesClassifier
    mfs = ["sqrt", 0.3, None] if kind == "rf" else ["sqrt", 0.3]  # ET with None on 0/1 inputs = T copies
    if fast:
        mfs = mfs[:2]
    lims = [("max_depth", d) for d in (8, 10, 12)] + [("max_leaf_nodes", m) for m in (32, 64, 128)]
    cands = []
    for mf in mfs:
        for key, v in lims:
            f = Cls(n_estimators=31, max_features=mf, random_state=0, n_jobs=1, **{key: v}).fit(xtr, ytr)
            preds = np.array([e.predict(xva) for e in f.estimators_]).astype(np.int32)  # classes are 0/1
            cs = np.cumsum(preds, axis=0)
            leaves = np.cumsum([e.get_n_leaves() for e in f.estimators_])
            for T in range(3, 32, 2):
                a = acc_of(cs[T - 1] * 2 > T, yva)
                est = 3 * (leaves[T - 1] - T) + 5 * T
                cands.append((a, est, dict(kind=kind, max_features=mf, T=T, **{key: v}), (f, T)))

    def build(m):
        f, T = m
        trees = f.estimators_[:T]
        ints = [np.array([int(np.argmax(e.tree_.value[i][0])) for i in range(e.tree_.node_count)]) for e in trees]
        return weighted_trees_aig(n, trees, ints, T // 2 + 1)

    def verify(aig, out, m):
        f, T = m
        p = np.array([e.predict(xva) for e in f.estimators_[:T]]).sum(0) * 2 > T
        return (aig_eval(aig, out, xva) == p).all()

    return best_exact(cands, build, verify, limit=40)


def run_gb(xtr, ytr, xva, yva, fast=False):
    from sklearn.ensemble import GradientBoostingClassifier
    n = xtr.shape[1]
    cands = []
    Ts = [5, 10, 15, 20, 30, 40, 60, 80, 100]
    cfgs = [(1, 0.3), (2, 0.3), (3, 0.3), (4, 0.3)]
    if fast:
        cfgs = [(1, 0.3), (3, 0.3)]
    for d, lr in cfgs:
        g = GradientBoostingClassifier(n_estimators=max(Ts), max_depth=d, learning_rate=lr,
                                       subsample=1.0, random_state=0).fit(xtr, ytr)
        init = float(g.decision_function(xva[:1])[0] - sum(lr * e[0].predict(xva[:1])[0] for e in g.estimators_))
        # per-tree leaf values (raw, times lr) and per-sample leaf contributions on valid
        trees = [e[0] for e in g.estimators_]
        vals = [lr * e.tree_.value[:, 0, 0] for e in trees]
        leaf_va = np.array([e.apply(xva) for e in trees])  # (T, N)
        for T in Ts:
            mx = max(np.abs(v[:]).max() for v in vals[:T])
            for b in (3, 4, 5, 6):
                s = (2 ** (b - 1) - 1) / mx
                q = [np.rint(v * s).astype(np.int64) for v in vals[:T]]
                tot = sum(q[t][leaf_va[t]] for t in range(T))
                k = int(np.ceil(-init * s - 1e-9))
                # decision: sum q >= k  (raw >= 0 -> class 1)
                a = acc_of(tot >= k, yva)
                leaves = sum(e.get_n_leaves() for e in trees[:T])
                est = b * 3 * (leaves - T) + 9 * b * T
                cands.append((a, est, dict(max_depth=d, lr=lr, T=T, bits=b), (trees[:T], q, k, leaf_va[:T])))

    def build(m):
        trees, q, k, _ = m
        return weighted_trees_aig(n, trees, q, k)

    def verify(aig, out, m):
        trees, q, k, lv = m
        tot = sum(q[t][lv[t]] for t in range(len(trees)))
        return (aig_eval(aig, out, xva) == (tot >= k)).all()

    return best_exact(cands, build, verify, limit=30)


def quantize_linear(w, b0, bits):
    mx = np.abs(w).max()
    if mx == 0:
        return None
    s = (2 ** (bits - 1) - 1) / mx
    q = np.rint(w * s).astype(np.int64)
    k = int(np.ceil(-b0 * s - 1e-9))
    return q, k


def run_lr(xtr, ytr, xva, yva):
    from sklearn.linear_model import LogisticRegression
    n = xtr.shape[1]
    cands = []
    for pen in ("l2", "l1"):
        for C in (0.01, 0.03, 0.1, 0.3, 1, 3, 10):
            m = LogisticRegression(penalty=pen, C=C, solver="liblinear", max_iter=500).fit(xtr, ytr)
            w, b0 = m.coef_[0], m.intercept_[0]
            for bits in (3, 4, 5, 6, 8):
                qk = quantize_linear(w, b0, bits)
                if qk is None:
                    continue
                q, k = qk
                a = acc_of(xva.astype(np.int64) @ q >= k, yva)
                est = int(np.abs(q).astype(bool).sum() * bits * 1.5 * 9 / 2)
                cands.append((a, est, dict(penalty=pen, C=C, bits=bits), (q, k)))

    def build(m):
        return linear_aig(n, *m)

    def verify(aig, out, m):
        q, k = m
        return (aig_eval(aig, out, xva) == (xva.astype(np.int64) @ q >= k)).all()

    return best_exact(cands, build, verify)


def run_mlp(xtr, ytr, xva, yva):
    from sklearn.neural_network import MLPClassifier
    n = xtr.shape[1]
    best = None
    for H in (8, 32):
        for alpha in (1e-2,):
            m = MLPClassifier(hidden_layer_sizes=(H,), alpha=alpha, max_iter=300, early_stopping=True,
                              random_state=0).fit(xtr, ytr)
            a = acc_of(m.predict(xva), yva)
            # rough cost: one 4-bit threshold unit per hidden neuron + output unit
            unit = linear_aig(n, quantize_linear(m.coefs_[0][:, 0], 0.0, 4)[0], 0)
            est = H * unit[0].count(unit[1]) + 9 * 4 * H
            if best is None or a > best["acc"]:
                best = dict(acc=a, ands=int(est), params=dict(H=H, alpha=alpha), verified=False, estimated=True)
    return best


def run_knn(xtr, ytr, xva, yva):
    # Hamming distance via matmul; ties broken by index order
    a = xtr.astype(np.float32)
    b = xva.astype(np.float32)
    d = b @ (1 - a).T + (1 - b) @ a.T  # (Nva, Ntr)
    idx = np.argsort(d, axis=1, kind="stable")[:, :25]
    best = None
    for k in (1, 3, 5, 9, 15, 25):
        p = ytr[idx[:, :k]].sum(1) * 2 > k
        acc = acc_of(p, yva)
        if best is None or acc > best["acc"]:
            best = dict(acc=acc, ands=None, params=dict(k=k), verified=False, hint=True)
    return best


FAMS = dict(dt=run_dt, xor=run_xor, rf=lambda *a, fast=False: run_forest(*a, "rf", fast),
            et=lambda *a, fast=False: run_forest(*a, "et", fast), gb=run_gb, lr=run_lr, mlp=run_mlp, knn=run_knn)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "json"))
    ap.add_argument("--families", default="dt,xor,rf,et,gb,lr,mlp,knn")
    ap.add_argument("--redo", action="store_true", help="recompute families already in the json")
    ap.add_argument("--fast", action="store_true", help="smaller forest/gb sweeps (wide functions)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in args.only.split(","):
        xtr, ytr = read_pla(f"{DATA}/{name}.train.pla.gz")
        xva, yva = read_pla(f"{DATA}/{name}.valid.pla.gz")
        path = os.path.join(args.out, f"{name}.json")
        res = json.load(open(path)) if os.path.exists(path) else {}
        for fam in args.families.split(","):
            if fam in res and not args.redo:
                continue
            t0 = time.time()
            fn = FAMS[fam]
            if fam in ("rf", "et", "gb"):
                r = fn(xtr, ytr, xva, yva, fast=args.fast)
            else:
                r = fn(xtr, ytr, xva, yva)
            if r is not None:
                r["secs"] = round(time.time() - t0, 1)
                r["params"] = {k: (v if not isinstance(v, (np.integer, np.floating)) else v.item())
                               for k, v in r["params"].items()}
            res[fam] = r
            accs = '-' if r is None else '%.2f' % (100 * r['acc'])
            print(f"{name} {fam:4s} {accs} "
                  f"ands={None if r is None else r['ands']} {None if r is None else r['params']} "
                  f"{time.time()-t0:.1f}s", flush=True)
            json.dump(res, open(path, "w"), indent=1)


if __name__ == "__main__":
    main()
