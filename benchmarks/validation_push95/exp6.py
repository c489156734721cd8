exec(open('/work/cache/push95/val.py').read())
import json
def R(vs, rel='both'): return [round(float(a),4) for a in retrieval(vs, rel)]
DV = np.load('/work/cache/push95/desc_variants.npz'); DC = np.load('/work/cache/push95/desc_cam.npz')
runs = [('adapted', 'hsv1244', DV['hsv1244'], 0.03), ('adapted', 'cam0_1244', DC['cam0.0_(12, 4, 4)'], 0.03),
        ('concat', 'hsv833', np.hstack([A['adapted'], DV['hsv833']]), 0.01), ('concat', 'hsv1244', np.hstack([A['adapted'], DV['hsv1244']]), 0.01)]
for feat, name, d, C in runs:
    base = A['adapted'] if feat == 'adapted' else A['frozen']
    x = np.hstack([base, d]).astype(np.float32)
    P = {t: np.sqrt(fit_lr(x, t, C)[0]) for t in ('type', 'colour', 'colour_type')}
    np.savez(f'/work/cache/push95/P_{feat}_{name}_{C}.npz', **P)
    print(feat, name, C, 'colour', R([P['colour']], 'colour'), 'type', R([P['type']], 'type'), 'tc', R([P['type'], P['colour']]),
          'ct_x_tc', R([P['type'], P['colour'], P['colour_type']]), 'pt', [round(float(v), 4) for v in pair_metrics(P['type'], 'type')],
          'pc', [round(float(v), 4) for v in pair_metrics(P['colour'], 'colour')], flush=True)
