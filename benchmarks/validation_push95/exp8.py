exec(open('/work/cache/push95/val.py').read())
from sklearn.neural_network import MLPClassifier
def R(vs): return [round(float(a),4) for a in retrieval(vs, 'both')]
for feat in ('adapted', 'frozen'):
    x = np.hstack([A[feat], A['desc']]).astype(np.float32)
    sc = StandardScaler().fit(x[fit]); xs = sc.transform(x)
    for alpha in (1.0,):
        P = {}
        for t in ('type', 'colour', 'colour_type'):
            m = MLPClassifier((256,), alpha=alpha, early_stopping=True, random_state=0, max_iter=200).fit(xs[fit], T[t][fit])
            p = np.zeros((len(x), len(m.classes_)), np.float32); p[gal] = m.predict_proba(xs[gal]); P[t] = np.sqrt(p)
        print('mlp', feat, alpha, 'tc', R([P['type'], P['colour']]), 'ct_x_tc', R([P['type'], P['colour'], P['colour_type']]),
              'pc', [round(float(v), 4) for v in pair_metrics(P['colour'], 'colour')], flush=True)
