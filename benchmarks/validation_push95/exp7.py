exec(open('/work/cache/push95/val.py').read())
def R(vs): return [round(float(a),4) for a in retrieval(vs, 'both')]
L = lambda n: dict(np.load(f'/work/cache/push95/P_{n}.npz'))
Pa, Pf = L('adapted_0.03'), L('frozen_0.1')
Pa2 = L('adapted_hsv1244_0.03')
def ens(*Ps): return {t: np.sqrt(sum(P[t]**2 for P in Ps) / len(Ps)) for t in Ps[0]}
for name, E in [('a+f', ens(Pa, Pf)), ('a+a1244', ens(Pa, Pa2)), ('a+a1244+f', ens(Pa, Pa2, Pf))]:
    print(name, 'tc', R([E['type'], E['colour']]), 'ct_x_tc', R([E['type'], E['colour'], E['colour_type']]), 'ct', R([E['colour_type']]),
          'pt', [round(float(v),4) for v in pair_metrics(E['type'], 'type')], 'pc', [round(float(v),4) for v in pair_metrics(E['colour'], 'colour')], flush=True)
# error overlap: joint argmax predictions
def pred(P):
    tn, cn = np.unique(T['type'][fit]), np.unique(T['colour'][fit])
    return tn[P['type'][val].argmax(1)], cn[P['colour'][val].argmax(1)]
wrong = []
for P in (Pa, Pf, Pa2, ens(Pa, Pf)):
    t, c = pred(P)
    wrong.append((t != T['type'][val]) | (c != T['colour'][val]))
W_ = np.array(wrong)
print('errors per variant', W_.sum(1), 'in all', W_.all(0).sum(), 'in any', W_.any(0).sum())
idx = val[W_.all(0)]
print([(int(i), T['labels'][i] if 'labels' in T else A['labels'][i]) for i in idx])
t, c = pred(ens(Pa, Pf))
print([(A['labels'][i], t[k] + '/' + c[k]) for k, i in enumerate(val) if W_[3, k]])
