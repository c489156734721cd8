exec(open('/work/cache/push95/val.py').read())
exec(open('/work/cache/push95/desc.py').read())
import json
def R(vs, rel='both'): return [round(float(a),4) for a in retrieval(vs, rel)]
HSV = rgb2hsv(RGB); LAB = rgb2lab(RGB)
cm = crop_mask()
wb = W * cm
base = hsv_desc(HSV, wb)
print('reproduce max diff', np.abs(base - A['desc']).max(), flush=True)
variants = {
  'hsv833': base,
  'hsv1244': hsv_desc(HSV, wb, (12, 4, 4)),
  'hsv1636': hsv_desc(HSV, wb, (16, 3, 6)),
  'lab566': lab_desc(LAB, wb),
  'lab888': lab_desc(LAB, wb, (8, 8, 8)),
  'hsv833+labmom': np.hstack([base, lab_moments(LAB, wb)]),
  'hsv1244+lab566': np.hstack([hsv_desc(HSV, wb, (12, 4, 4)), lab_desc(LAB, wb)]),
}
np.savez('/work/cache/push95/desc_variants.npz', **variants)
for name, d in variants.items():
    x = np.hstack([A['frozen'], d]).astype(np.float32)
    P = {t: np.sqrt(fit_lr(x, t, 0.03)[0]) for t in ('type', 'colour', 'colour_type')}
    print(name, d.shape[1], 'colour', R([P['colour']], 'colour'), 'tc', R([P['type'], P['colour']]),
          'ct_x_tc', R([P['type'], P['colour'], P['colour_type']]), 'pc', [round(float(v), 4) for v in pair_metrics(P['colour'], 'colour')], flush=True)
