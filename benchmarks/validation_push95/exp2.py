exec(open('/work/cache/push95/val.py').read())
import json, itertools
def load(f, C): return dict(np.load(f'/work/cache/push95/P_{f}_{C}.npz'))
def R(vs, extra=None): return [round(float(a),4) for a in retrieval(vs, 'both', extra=extra)]
Pf, Pa = load('frozen', 0.1), load('adapted', 0.03)
print('frozen tc', R([Pf['type'], Pf['colour']]), 'ct_x_tc', R([Pf['type'], Pf['colour'], Pf['colour_type']]))
print('adapted tc', R([Pa['type'], Pa['colour']]), 'ct_x_tc', R([Pa['type'], Pa['colour'], Pa['colour_type']]))
# probability-level ensemble (average p, then sqrt)
E = {t: np.sqrt((Pf[t]**2 + Pa[t]**2) / 2) for t in Pf}
print('ens tc', R([E['type'], E['colour']]), 'ct_x_tc', R([E['type'], E['colour'], E['colour_type']]))
# add cosine tie-breaker
for feat in ('frozen', 'adapted'):
    z = A[feat] / np.linalg.norm(A[feat], axis=1, keepdims=True)
    cos = z[val] @ z[gal].T
    for lam in (0.02, 0.05, 0.1, 0.2):
        print('adapted-ct_x_tc + cos', feat, lam, R([Pa['type'], Pa['colour'], Pa['colour_type']], extra=lam * cos))
