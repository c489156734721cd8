exec(open('/work/cache/push95/val.py').read())
from cbir.similarity.evaluation import average_precision_at_k
train = np.sort(np.concatenate([fit, val]))
x = np.hstack([A['frozen'], A['desc']]).astype(np.float32)
rng = np.random.default_rng(1)
folds = np.array_split(rng.permutation(train), 5)
res = {'tc': [], 'ct_x_tc': [], 'ct': []}
for k, q in enumerate(folds):
    q = np.sort(q); f = np.setdiff1d(train, q)
    sc = StandardScaler().fit(x[f]); xs = sc.transform(x[train])
    P = {}
    for t in ('type', 'colour', 'colour_type'):
        clf = LogisticRegression(C=0.03, max_iter=1000).fit(sc.transform(x[f]), T[t][f])
        P[t] = np.sqrt(clf.predict_proba(xs)).astype(np.float32)  # rows = train order
    pos = np.searchsorted(train, q)
    rel = (T['type'][q][:, None] == T['type'][train][None]) & (T['colour'][q][:, None] == T['colour'][train][None])
    rel[np.arange(len(q)), pos] = False
    for name, vs in (('tc', ('type', 'colour')), ('ct_x_tc', ('type', 'colour', 'colour_type')), ('ct', ('colour_type',))):
        S = np.prod([P[t][pos] @ P[t].T for t in vs], axis=0)
        idx, _ = top_k(S, 10, exclude=pos)
        ranked = np.take_along_axis(rel, idx, axis=1)
        res[name].append(np.stack([average_precision_at_k(ranked, rel.sum(1), 10), ranked[:, 0]], 1))
    print('fold', k, {n: np.concatenate(v).mean(0).round(4).tolist() for n, v in res.items()}, flush=True)
R = {n: np.concatenate(v) for n, v in res.items()}
d = R['ct_x_tc'] - R['tc']
boot = np.random.default_rng(0).choice(len(d), (2000, len(d)))
print('paired diff ct_x_tc - tc mean', d.mean(0), 'bootstrap 95% CI map', np.percentile(d[:, 0][boot].mean(1), [2.5, 97.5]), 'p@1', np.percentile(d[:, 1][boot].mean(1), [2.5, 97.5]))
np.savez('/work/cache/push95/kfold.npz', **R)
