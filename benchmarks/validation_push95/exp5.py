exec(open('/work/cache/push95/val.py').read())
exec(open('/work/cache/push95/desc.py').read())
import torch, json
def R(vs, rel='both'): return [round(float(a),4) for a in retrieval(vs, rel)]
C = np.load('/work/cache/push95/cams.npz')
cams = C['cams']
Pt = np.load('/work/cache/push95/P_frozen_0.1.npz')['type']
pred = Pt.argmax(1)
cam = cams[np.arange(len(cams)), pred]  # (N,9,9), predicted type
up = torch.nn.functional.interpolate(torch.from_numpy(cam)[:, None], size=(57, 57), mode='bilinear', align_corners=False)[:, 0].numpy()
full = np.zeros((len(cam), 64, 64), np.float32); full[:, 3:60, 3:60] = up
camn = np.maximum(full, 0); camn /= np.maximum(camn.max((1, 2), keepdims=True), 1e-6)
HSV = rgb2hsv(RGB)
cm = crop_mask(); wb = W * cm
out = {}
for alpha in (0.0, 0.3):
    for bins in ((8, 3, 3), (12, 4, 4)):
        d = hsv_desc(HSV, wb * (alpha + (1 - alpha) * camn), bins)
        out[f'cam{alpha}_{bins}'] = d
        x = np.hstack([A['frozen'], d]).astype(np.float32)
        P = {t: np.sqrt(fit_lr(x, t, 0.03)[0]) for t in ('type', 'colour', 'colour_type')}
        print('cam', alpha, bins, 'colour', R([P['colour']], 'colour'), 'tc', R([P['type'], P['colour']]),
              'ct_x_tc', R([P['type'], P['colour'], P['colour_type']]), 'pc', [round(float(v), 4) for v in pair_metrics(P['colour'], 'colour')], flush=True)
np.savez('/work/cache/push95/desc_cam.npz', **out)
