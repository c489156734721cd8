"""Balanced positive/negative image pairs per task, built on an image-level train/test split."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_PAIRS_PER_TASK = 5692  # the reference study: 5,692 pairs per task, 11,384 in all
DEFAULT_TEST_FRACTION = 0.3
MIN_IMAGES_PER_CLASS = 4  # the fewest distinct images of a class that give it pairs on both sides of the split


@dataclass(frozen=True)
class Pairs:
    """Index pairs into a gallery with a 0/1 label (1 = same attribute for the task)."""

    left: np.ndarray
    right: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.label)

    @property
    def n_positive(self) -> int:
        return int(self.label.sum())


@dataclass(frozen=True)
class ImageSplit:
    """Which gallery images train the classifiers and which are held out; duplicates are dropped."""

    train: np.ndarray
    test: np.ndarray
    n_duplicates: int  # extra copies of an identical file with one label (one copy kept)
    n_conflicting: int  # copies of an identical file filed under different labels (all dropped)

    def summary(self) -> dict[str, int]:
        return {
            "train_images": len(self.train),
            "test_images": len(self.test),
            "dropped_duplicates": self.n_duplicates,
            "dropped_conflicting": self.n_conflicting,
        }


def dedupe(labels: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Keep the first image of each content hash; drop every copy of a hash filed under two labels."""
    _, first, inverse, counts = np.unique(
        np.asarray(hashes).astype(str), return_index=True, return_inverse=True, return_counts=True
    )
    _, label_codes = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    n_labels = int(label_codes.max()) + 1
    distinct = np.unique(inverse * n_labels + label_codes)  # distinct (hash, label) combinations
    conflicting = np.bincount(distinct // n_labels, minlength=len(first)) > 1
    keep = np.sort(first[~conflicting])
    return keep, int((counts[~conflicting] - 1).sum()), int(counts[conflicting].sum())


def split_images(
    labels: np.ndarray,
    hashes: np.ndarray | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
) -> ImageSplit:
    """Split images (not pairs) into train/test, stratified by label, after de-duplicating by hash."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    labels = np.asarray(labels).astype(str)
    if hashes is None:
        keep, n_dup, n_conf = np.arange(len(labels)), 0, 0
    else:
        keep, n_dup, n_conf = dedupe(labels, hashes)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for lab in np.unique(labels[keep]):
        members = rng.permutation(keep[labels[keep] == lab])
        n_test = int(round(len(members) * test_fraction))
        if len(members) >= 2:
            n_test = min(max(n_test, 1), len(members) - 1)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return ImageSplit(np.sort(np.concatenate(train)), np.sort(np.concatenate(test)), n_dup, n_conf)


def validation_split(
    labels: np.ndarray, hashes: np.ndarray | None, train: np.ndarray, test_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) rows: the training rows `train` split again as split_images does (seed + 1), so settings
    are chosen without the test rows."""
    train = np.asarray(train)
    inner = split_images(np.asarray(labels)[train], None if hashes is None else np.asarray(hashes)[train],
                         test_fraction=test_fraction, seed=seed + 1)
    return train[inner.train], train[inner.test]


def check_class_sizes(labels: np.ndarray, hashes: np.ndarray | None = None,
                      minimum: int = MIN_IMAGES_PER_CLASS) -> None:
    """Refuse a gallery with a class too small to train on (fewer than `minimum` distinct images), naming it."""
    labels = np.asarray(labels).astype(str)
    keep = np.arange(len(labels)) if hashes is None else dedupe(labels, hashes)[0]
    names, counts = np.unique(labels[keep], return_counts=True)
    if "" in names:
        raise ValueError("training needs a label for every image, and this gallery has items without one (a flat "
                         "folder, or a manifest without type/colour/label): the attribute models shipped with the "
                         "backbone serve it without training; to train, build from class folders or a labelled manifest")
    small = [f"{str(n)!r} ({c})" for n, c in zip(names, counts) if c < minimum]
    if len(names) < 2:
        raise ValueError(f"training needs at least two classes; the gallery has {len(names)} ({', '.join(names)})")
    if small:
        raise ValueError(f"too few images to train on in class {', '.join(small)}: each class needs at least "
                         f"{minimum} distinct images (some to train on, one held out); add photos or leave the class out")


def affordable_pairs(keys: np.ndarray, pool: np.ndarray, n_pairs: int) -> int:
    """`n_pairs`, or fewer (an even number, half positive) when the pool's keys allow fewer distinct pairs."""
    max_pos, max_neg = available_pairs(np.asarray(keys).astype(str)[np.asarray(pool, dtype=np.int64)])
    return int(min(n_pairs, 2 * min(max_pos, max_neg)))


def available_pairs(keys: np.ndarray) -> tuple[int, int]:
    """How many distinct (positive, negative) unordered pairs a set of keys allows."""
    _, counts = np.unique(np.asarray(keys).astype(str), return_counts=True)
    n = int(counts.sum())
    pos = int((counts * (counts - 1) // 2).sum())
    return pos, n * (n - 1) // 2 - pos


def sample_pairs(keys: np.ndarray, pool: np.ndarray, n_pairs: int, rng: np.random.Generator) -> Pairs:
    """Sample `n_pairs` distinct pairs from `pool`, half with equal keys, uniformly among valid pairs."""
    pool = np.asarray(pool, dtype=np.int64)
    pool_keys = np.asarray(keys).astype(str)[pool]
    n_pos = n_pairs // 2
    n_neg = n_pairs - n_pos
    max_pos, max_neg = available_pairs(pool_keys)
    if n_pos > max_pos or n_neg > max_neg:
        raise ValueError(
            f"cannot draw {n_pos} positive / {n_neg} negative distinct pairs from {len(pool)} images "
            f"(at most {max_pos} / {max_neg}); ask for fewer pairs"
        )
    parts = [_draw(pool_keys, n, positive, rng) for n, positive in ((n_pos, True), (n_neg, False))]
    a = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    y = np.concatenate([np.ones(n_pos, np.int8), np.zeros(n_neg, np.int8)])
    order = rng.permutation(len(y))
    return Pairs(pool[a[order]], pool[b[order]], y[order])


def _draw(keys: np.ndarray, n: int, positive: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rejection-sample n distinct unordered position pairs whose key equality matches `positive`."""
    m = len(keys)
    codes = np.empty(0, dtype=np.int64)
    while len(codes) < n:
        batch = max(64, 8 * (n - len(codes)))
        a, b = rng.integers(m, size=batch), rng.integers(m, size=batch)
        ok = (a != b) & ((keys[a] == keys[b]) == positive)
        lo, hi = np.minimum(a[ok], b[ok]), np.maximum(a[ok], b[ok])
        codes = np.concatenate([codes, lo * m + hi])
        _, first = np.unique(codes, return_index=True)
        codes = codes[np.sort(first)]  # distinct, in draw order, so the result depends only on the seed
    codes = codes[:n]
    return codes // m, codes % m


def build_task_pairs(
    attributes: dict[str, np.ndarray],
    split: ImageSplit,
    n_pairs: int = DEFAULT_PAIRS_PER_TASK,
    seed: int = 0,
) -> dict[str, dict[str, Pairs]]:
    """For each task, train and test pairs drawn only within the train and test images respectively.

    `n_pairs` per task is shared between train and test in proportion to the image split; a part whose images allow
    fewer distinct balanced pairs gets all it allows (cbir.similarity.training reports it).
    """
    n_total = len(split.train) + len(split.test)
    n_test = int(round(n_pairs * len(split.test) / n_total))
    n_test -= n_test % 2
    out: dict[str, dict[str, Pairs]] = {}
    for i, (task, keys) in enumerate(sorted(attributes.items())):
        rng = np.random.default_rng([seed, i])
        out[task] = {  # as many as asked, or as many as the images allow (balanced)
            "train": sample_pairs(keys, split.train, affordable_pairs(keys, split.train, n_pairs - n_test), rng),
            "test": sample_pairs(keys, split.test, affordable_pairs(keys, split.test, n_test), rng),
        }
    return out


def save_pairs(path: str | os.PathLike, pairs: dict[str, dict[str, Pairs]], split: ImageSplit, meta: dict) -> None:
    """Write pairs and the image split as a pickle-free .npz plus JSON metadata."""
    arrays: dict[str, np.ndarray] = {"split_train": split.train, "split_test": split.test}
    for task, parts in pairs.items():
        for part, p in parts.items():
            arrays[f"{task}_{part}"] = np.stack([p.left, p.right, p.label.astype(np.int64)])
    meta = {**meta, "split": split.summary()}
    arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez_compressed(Path(path), **arrays)


def load_pairs(path: str | os.PathLike) -> tuple[dict[str, dict[str, Pairs]], ImageSplit, dict]:
    """Read what save_pairs wrote (allow_pickle stays off)."""
    with np.load(Path(path), allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta_json"]).decode())
        pairs: dict[str, dict[str, Pairs]] = {}
        for key in z.files:
            if key.startswith(("split_", "meta_")):
                continue
            task, part = key.rsplit("_", 1)
            a, b, y = z[key]
            pairs.setdefault(task, {})[part] = Pairs(a, b, y.astype(np.int8))
        s = meta["split"]
        split = ImageSplit(z["split_train"], z["split_test"], s["dropped_duplicates"], s["dropped_conflicting"])
    return pairs, split, meta
