"""Instance retrieval: an edited copy of a gallery photo must find that photo (R@1, R@5).

The edit (seeded per query): a random crop of 70-90 % of the area, a horizontal flip, brightness and
contrast within +-15 %, shorter side 200 px, then JPEG quality 60, as a shopper's re-shot photo would be.
A hit is the source photo or a byte-identical copy (`r@k`); `same_picture_r@k` also counts another file of
the same picture (a re-encoded or resized copy: 32x32 thumbnails within SAME_PICTURE_MAD grey levels on
average), which the Apparel dataset holds for about 4 % of its photos.
"""

from __future__ import annotations

import io
from typing import Any, Callable, Optional, Sequence

import numpy as np
from PIL import Image, ImageEnhance
from tqdm.auto import tqdm

from cbir.embed.colour import colour_descriptor
from cbir.images import load_image
from cbir.index import EmbeddingIndex, top_k
from cbir.similarity.classifiers import ClassifierSet
from cbir.similarity.registry import get_method

CROP_AREA = (0.7, 0.9)
PHOTOMETRIC = 0.15
SHORT_SIDE = 200
JPEG_QUALITY = 60
INSTANCE_KS = (1, 5)
THUMBNAIL = 32
SAME_PICTURE_MAD = 3.0  # mean absolute difference (0-255) of two thumbnails below which they are the same picture


def thumbnail(image: Any) -> np.ndarray:
    """(32, 32, 3) float32 box-filtered RGB thumbnail of the whole photo (aspect ignored)."""
    return np.asarray(load_image(image).convert("RGB").resize((THUMBNAIL, THUMBNAIL), Image.BOX), np.float32)


class PictureMatcher:
    """Whether two gallery rows are the same picture (thumbnails within SAME_PICTURE_MAD), thumbnails cached."""

    def __init__(self, gallery: Any, threshold: float = SAME_PICTURE_MAD) -> None:
        self.gallery, self.threshold, self._thumbs = gallery, threshold, {}

    def _thumb(self, row: int) -> np.ndarray:
        if row not in self._thumbs:
            self._thumbs[row] = thumbnail(self.gallery.image_bytes(row)[0])
        return self._thumbs[row]

    def __call__(self, a: int, b: int) -> bool:
        return bool(np.abs(self._thumb(int(a)) - self._thumb(int(b))).mean() < self.threshold)


def edited_copy(image: Any, seed: int) -> bytes:
    """JPEG bytes of the seeded edit of `image` (crop, flip, brightness/contrast, resize, JPEG q60)."""
    rng = np.random.default_rng(seed)
    img = load_image(image)
    w, h = img.size
    area = rng.uniform(*CROP_AREA)
    aspect = np.exp(rng.uniform(np.log(0.8), np.log(1.25)))
    cw = int(round(min(w, np.sqrt(area * w * h * aspect))))
    ch = int(round(min(h, area * w * h / max(cw, 1))))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = img.crop((x, y, x + cw, y + ch)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    img = ImageEnhance.Brightness(img).enhance(1 + rng.uniform(-PHOTOMETRIC, PHOTOMETRIC))
    img = ImageEnhance.Contrast(img).enhance(1 + rng.uniform(-PHOTOMETRIC, PHOTOMETRIC))
    scale = SHORT_SIDE / min(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def instance_queries(
    gallery: Any, rows: Sequence[int], extractor: Any, seed: int = 0, batch_size: int = 32,
    descriptors: bool = True, chunk: int = 512, progress: bool = False,
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Embeddings (and colour descriptors, when asked and the gallery has them) of the edited copies of gallery
    `rows`, made and embedded `chunk` photos at a time."""
    spec = gallery.colour_spec if descriptors else None
    vecs, desc = [], []
    for s in tqdm(range(0, len(rows), chunk), desc="edited copies", unit="chunk", disable=not progress):
        copies = [edited_copy(gallery.image_bytes(int(r))[0], seed * 1_000_003 + int(r)) for r in rows[s : s + chunk]]
        vecs.append(np.asarray(extractor.embed_images([load_image(c) for c in copies], batch_size=batch_size), np.float32))
        if spec is not None:
            desc += [colour_descriptor(c, spec) for c in copies]
    out = np.concatenate(vecs) if vecs else np.zeros((0, gallery.embeddings.shape[1]), np.float32)
    return out, (np.stack(desc) if spec is not None and desc else None)


def instance_recall(
    method: str,
    index: EmbeddingIndex,
    queries: np.ndarray,
    targets: np.ndarray,
    hashes: np.ndarray,
    task: str = "type",
    classifiers: Optional[ClassifierSet] = None,
    query_descriptors: Optional[np.ndarray] = None,
    ks: Sequence[int] = INSTANCE_KS,
    batch: int = 256,
    same_picture: Optional[Callable[[int, int], bool]] = None,
) -> dict[str, float]:
    """R@k: share of queries whose source photo (or a byte-identical copy: same sha1) is in the top k; with
    `same_picture(source row, result row)` (a PictureMatcher), also same_picture_r@k."""
    hashes = np.asarray(hashes).astype(str)
    targets = np.asarray(targets)
    found, ranked = [], []
    for s in range(0, len(queries), batch):
        qd = None if query_descriptors is None else query_descriptors[s : s + batch]
        sc = get_method(method).score(queries[s : s + batch], index, task=task, classifiers=classifiers, query_descriptors=qd)
        idx, _ = top_k(sc, max(ks))
        found.append(hashes[idx] == hashes[targets[s : s + batch]][:, None])
        ranked.append(idx)
    hit = np.concatenate(found) if found else np.zeros((0, max(ks)), bool)
    out = {**{f"r@{k}": float(hit[:, :k].any(axis=1).mean()) for k in ks}, "queries": int(len(hit))}
    if same_picture is not None and len(hit):
        idx = np.concatenate(ranked)
        same = hit | np.array([[same_picture(t, j) for j in row] for t, row in zip(targets, idx)], bool).reshape(hit.shape)
        out.update({f"same_picture_r@{k}": float(same[:, :k].any(axis=1).mean()) for k in ks})
    return out


def instance_markdown(results: dict[str, dict[str, float]], labels: dict[str, str], ks: Sequence[int] = INSTANCE_KS) -> str:
    """Method | R@1 | R@5 | (same picture R@1 | R@5 |) queries."""
    keys = [f"r@{k}" for k in ks]
    if results and all(f"same_picture_r@{k}" in r for r in results.values() for k in ks):
        keys += [f"same_picture_r@{k}" for k in ks]
    head = " | ".join(k.replace("same_picture_r@", "same picture R@").replace("r@", "R@") for k in keys)
    lines = [f"| Method | {head} | Queries |", "|---|" + "---|" * (len(keys) + 1)]
    for name, r in results.items():
        cells = " | ".join(f"{r[k]:.3f}" for k in keys)
        lines.append(f"| {labels.get(name, name)} | {cells} | {r['queries']} |")
    return "\n".join(lines)


def near_duplicate_groups(vectors: np.ndarray, threshold: float, hashes: Optional[np.ndarray] = None,
                          block: int = 2048) -> np.ndarray:
    """(N,) group ids: photos linked by a cosine >= `threshold` (or the same hash), transitively, share one group,
    so that a split can keep one product's shots on one side."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    v = np.asarray(vectors, np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    n, rows, cols = len(v), [], []
    for s in range(0, n, block):
        i, j = np.nonzero(v[s:s + block] @ v.T >= threshold)
        rows.append(i + s), cols.append(j)
    if hashes is not None:  # each photo linked to the first photo of its hash
        _, inv = np.unique(np.asarray(hashes).astype(str), return_inverse=True)
        first_row = np.full(inv.max() + 1, n, np.int64)
        np.minimum.at(first_row, inv, np.arange(n))
        rows.append(np.arange(n)), cols.append(first_row[inv])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), np.int8), (r, c)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def keep_groups_apart(train: np.ndarray, test: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) rows with every group on one side: a test row whose group (e.g. product) also has a training row
    moves to training, so a model trained on the old training rows is still scored only on unseen products."""
    train, test, groups = np.asarray(train), np.asarray(test), np.asarray(groups)
    moved = np.isin(groups[test], groups[train])
    return np.sort(np.concatenate([train, test[moved]])), test[~moved]
