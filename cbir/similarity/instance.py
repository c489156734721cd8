"""Instance retrieval: an edited copy of a gallery photo must find that photo (R@1, R@5).

The edit (seeded per query): a random crop of 70-90 % of the area, a horizontal flip, brightness and
contrast within +-15 %, shorter side 200 px, then JPEG quality 60, as a shopper's re-shot photo would be.
"""

from __future__ import annotations

import io
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image, ImageEnhance

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
    gallery: Any, rows: Sequence[int], extractor: Any, seed: int = 0, batch_size: int = 32
) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Embeddings (and colour descriptors, when the gallery has them) of the edited copies of gallery `rows`."""
    copies = [edited_copy(gallery.image_bytes(int(r))[0], seed * 1_000_003 + int(r)) for r in rows]
    vecs = extractor.embed_images([load_image(c) for c in copies], batch_size=batch_size)
    spec = gallery.colour_spec
    desc = None if spec is None else np.stack([colour_descriptor(c, spec) for c in copies])
    return np.asarray(vecs, np.float32), desc


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
) -> dict[str, float]:
    """R@k: share of queries whose source photo (or a byte-identical copy: same sha1) is in the top k."""
    hashes = np.asarray(hashes).astype(str)
    found = []
    for s in range(0, len(queries), batch):
        qd = None if query_descriptors is None else query_descriptors[s : s + batch]
        sc = get_method(method).score(queries[s : s + batch], index, task=task, classifiers=classifiers, query_descriptors=qd)
        idx, _ = top_k(sc, max(ks))
        found.append(hashes[idx] == hashes[np.asarray(targets[s : s + batch])][:, None])
    hit = np.concatenate(found) if found else np.zeros((0, max(ks)), bool)
    return {**{f"r@{k}": float(hit[:, :k].any(axis=1).mean()) for k in ks}, "queries": int(len(hit))}


def instance_markdown(results: dict[str, dict[str, float]], labels: dict[str, str], ks: Sequence[int] = INSTANCE_KS) -> str:
    """Method | R@1 | R@5 | queries."""
    head = " | ".join(f"R@{k}" for k in ks)
    lines = [f"| Method | {head} | Queries |", "|---|" + "---|" * (len(ks) + 1)]
    for name, r in results.items():
        cells = " | ".join(f"{r[f'r@{k}']:.3f}" for k in ks)
        lines.append(f"| {labels.get(name, name)} | {cells} | {r['queries']} |")
    return "\n".join(lines)
