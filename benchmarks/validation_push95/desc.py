import numpy as np
D = np.load('/work/cache/push95/img64.npz')
RGB, W = D['rgb'], D['w'].astype(np.float32)

def rgb2hsv(rgb):
    from PIL import Image
    return np.stack([np.asarray(Image.fromarray(im).convert('HSV'), np.int32) for im in rgb])

def rgb2lab(rgb):
    c = rgb.astype(np.float32) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    M = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], np.float32)
    xyz = c @ M.T / np.array([0.95047, 1.0, 1.08883], np.float32)
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    L = 116 * f[..., 1] - 16; a = 500 * (f[..., 0] - f[..., 1]); b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], -1)

def crop_mask(size=64, crop=0.8):
    m = int(round((1 - crop) / 2 * size)); k = np.zeros((size, size), np.float32); k[m:size - m, m:size - m] = 1; return k

def hist(bins_idx, weights, dim):
    n = len(bins_idx)
    flat = bins_idx.reshape(n, -1) + dim * np.arange(n)[:, None]
    h = np.bincount(flat.ravel(), weights=weights.reshape(n, -1).ravel(), minlength=n * dim).reshape(n, dim)
    s = h.sum(1, keepdims=True)
    h = np.where(s > 0, h / np.maximum(s, 1e-12), 1.0 / dim)
    return np.sqrt(h).astype(np.float32)

def hsv_desc(hsv, weights, bins=(8, 3, 3)):
    nh, ns, nv = bins
    idx = (((hsv[..., 0] * nh) >> 8) * ns + ((hsv[..., 1] * ns) >> 8)) * nv + ((hsv[..., 2] * nv) >> 8)
    return hist(idx, weights, nh * ns * nv)

def lab_desc(lab, weights, bins=(5, 6, 6)):
    nl, na, nb = bins
    li = np.clip((lab[..., 0] / 100 * nl).astype(int), 0, nl - 1)
    ai = np.clip(((lab[..., 1] + 80) / 160 * na).astype(int), 0, na - 1)
    bi = np.clip(((lab[..., 2] + 80) / 160 * nb).astype(int), 0, nb - 1)
    return hist((li * na + ai) * nb + bi, weights, nl * na * nb)

def lab_moments(lab, weights):
    w = weights / np.maximum(weights.sum((1, 2), keepdims=True), 1e-12)
    mu = (lab * w[..., None]).sum((1, 2))
    sd = np.sqrt(((lab - mu[:, None, None]) ** 2 * w[..., None]).sum((1, 2)))
    return np.hstack([mu / 50, sd / 50]).astype(np.float32)
