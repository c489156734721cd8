import sys, numpy as np
sys.path.insert(0, '/work/wt/push95')
from cbir.gallery.dataset import Gallery
from benchmarks.finetune import split_indices
g = Gallery.load('/work/cache/lead9/gallery')
a = Gallery.load('/work/cache/finetune/apparel/gallery')
fit, val, test = split_indices(g, 0.1, 0)
assert (g.labels == a.labels).all()
np.savez('/work/cache/push95/arrays.npz', frozen=g.embeddings, adapted=a.embeddings, desc=g.descriptors,
         types=g.types.astype(str), colours=g.colours.astype(str), labels=g.labels.astype(str), fit=fit, val=val, test=test)
print(len(fit), len(val), len(test), g.embeddings.shape, g.descriptors.shape)
