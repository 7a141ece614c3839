#!/usr/bin/env python3
"""Which XOR pairs does the best tree+XOR model use? (inspection helper)
Run: /tmp/peers/bin/python bench-results/iwls-research-2026-11-30c/xor_pairs.py ex12 ex13
"""
import json, os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from research import read_pla, xor_features, DATA, HERE
from sklearn.tree import DecisionTreeClassifier
for name in sys.argv[1:]:
    p = json.load(open(os.path.join(HERE, "json", name + ".json")))["xor"]["params"]
    xtr, ytr = read_pla(f"{DATA}/{name}.train.pla.gz"); xva, yva = read_pla(f"{DATA}/{name}.valid.pla.gz")
    n = xtr.shape[1]; k = p.pop("xor_topk")
    base = DecisionTreeClassifier(max_depth=10, random_state=0).fit(xtr, ytr)
    top = [int(i) for i in np.argsort(-base.feature_importances_)[:k]]
    pairs = [(top[a], top[b]) for a in range(k) for b in range(a + 1, k)]
    clf = DecisionTreeClassifier(random_state=0, **p).fit(xor_features(xtr, pairs), ytr)
    acc = (clf.predict(xor_features(xva, pairs)) == yva).mean()
    used = [int(f) for f in clf.tree_.feature if f >= 0]
    imp = clf.feature_importances_
    xs = sorted({f for f in used if f >= n}, key=lambda f: -imp[f])
    print(name, f"n={n} acc={100*acc:.2f} top inputs={sorted(top)}")
    print("  XOR features used (importance):", [(pairs[f-n], round(float(imp[f]), 3)) for f in xs[:10]], f"... {len(xs)} total")
    print("  share of importance on XOR features: %.2f" % imp[n:].sum())
