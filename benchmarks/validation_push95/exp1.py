exec(open('/work/cache/push95/val.py').read())
import json
res = {}
for feat in ('frozen', 'adapted'):
    x = np.hstack([A[feat], A['desc']]).astype(np.float32)
    for C in (0.003, 0.01, 0.03, 0.1):
        t0 = time.time()
        P = {t: np.sqrt(fit_lr(x, t, C)[0]) for t in ('type', 'colour', 'colour_type')}
        r = {
          'tc_both': retrieval([P['type'], P['colour']], 'both'),
          'ct_both': retrieval([P['colour_type']], 'both'),
          'ct_x_tc': retrieval([P['type'], P['colour'], P['colour_type']], 'both'),
          'type': retrieval([P['type']], 'type'), 'colour': retrieval([P['colour']], 'colour'),
          'pairs_type': pair_metrics(P['type'], 'type'), 'pairs_colour': pair_metrics(P['colour'], 'colour'),
        }
        r = {k: [round(float(a), 4) for a in v] for k, v in r.items()}
        print(feat, C, round(time.time()-t0), json.dumps(r), flush=True)
        np.savez(f'/work/cache/push95/P_{feat}_{C}.npz', **P)
