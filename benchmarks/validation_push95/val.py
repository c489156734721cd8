import sys, time, numpy as np
sys.path.insert(0, '/work/wt/push95')
from scipy import stats
from sklearn.metrics import roc_auc_score
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from cbir.similarity.evaluation import average_precision_at_k
from cbir.index import top_k

A = np.load('/work/cache/push95/arrays.npz')
fit, val = A['fit'], A['val']
gal = np.sort(np.concatenate([fit, val]))
T = {'type': A['types'], 'colour': A['colours'], 'colour_type': A['labels']}

def codes(v):
    names, c = np.unique(v, return_inverse=True)
    return c, names

def fit_lr(x, task, C=None, Cs=(1e-3,1e-2,1e-1,1.0)):
    y = T[task][fit]
    sc = StandardScaler().fit(x[fit])
    xs = sc.transform(x)
    clf = LogisticRegression(C=C, max_iter=1000).fit(xs[fit], y)
    p = np.zeros((len(x), len(clf.classes_)), np.float32)
    p[gal] = clf.predict_proba(xs[gal])
    return p, clf.classes_

def val_pairs(task, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    y = T[task][val]
    L, R, lab = [], [], []
    while len(L) < n:
        i, j = rng.choice(len(val), 2, replace=False)
        same = y[i] == y[j]
        want = len(L) % 2 == 0
        if same != want:
            # search a partner of wanted kind
            cand = np.flatnonzero((y == y[i]) == want); cand = cand[cand != i]
            if not len(cand): continue
            j = rng.choice(cand)
        L.append(val[i]); R.append(val[j]); lab.append(int(want))
    return np.array(L), np.array(R), np.array(lab)
PAIRS = {t: val_pairs(t) for t in ('type', 'colour')}

def pair_metrics(vec, task):
    L, R, lab = PAIRS[task]
    s = np.einsum('ij,ij->i', vec[L], vec[R])
    return stats.pearsonr(s, lab)[0], roc_auc_score(lab, s)

def retrieval(vecs, relevance, k=10, extra=None):
    """vecs: list of (N, C) per-image vectors whose inner products multiply; gallery = fit+val, queries = val."""
    keys = ('type', 'colour') if relevance == 'both' else (relevance,)
    gpos = {int(g): i for i, g in enumerate(gal)}
    qpos = np.array([gpos[int(q)] for q in val])
    S = None
    for v in vecs:
        s = v[val] @ v[gal].T
        S = s if S is None else S * s
    if extra is not None:
        S = S + extra
    idx, _ = top_k(S, k, exclude=qpos)
    rel = np.ones((len(val), len(gal)), bool)
    for key in keys:
        rel &= T[key][val][:, None] == T[key][gal][None, :]
    rel[np.arange(len(val)), qpos] = False
    ranked = np.take_along_axis(rel, idx, axis=1)
    return average_precision_at_k(ranked, rel.sum(1), k).mean(), ranked[:, 0].mean()
