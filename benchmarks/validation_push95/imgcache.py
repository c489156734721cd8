import sys, time, numpy as np
sys.path.insert(0, '/work/wt/push95')
from PIL import Image
from cbir.gallery.dataset import Gallery
from cbir.images import load_image
from cbir.embed.colour import ColourSpec, WEIGHTINGS
g = Gallery.load('/work/cache/lead9/gallery')
spec = ColourSpec()
n = len(g)
rgb = np.zeros((n, 64, 64, 3), np.uint8)
w = np.zeros((n, 64, 64), np.float16)
images = g.dataset.with_format("arrow", columns=["image"])
t0 = time.time()
for i in range(n):
    stored = images[i].column("image")[0].as_py()
    img = load_image(stored.get("bytes") or stored.get("path")).resize((64, 64), Image.BILINEAR)
    a = np.asarray(img, dtype=np.float32)
    rgb[i] = np.asarray(img)
    w[i] = WEIGHTINGS['border'](a, spec)
    if i % 1000 == 0: print(i, time.time() - t0, flush=True)
np.savez('/work/cache/push95/img64.npz', rgb=rgb, w=w)
print('done', time.time() - t0)
