"""Representation effect: PCA whitening and float16 storage against the float32 baseline, on one split."""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import numpy as np

from cbir.similarity.classifiers import ClassifierSet
from cbir.embed.spec import EmbeddingSpec
from cbir.index import EmbeddingIndex
from cbir.similarity.registry import get_method

from .config import BenchmarkConfig
from .measure import Log, log_stderr
from .reduction import PCAReduction, float16_error, float16_roundtrip

def representation_effect(
    embeddings: np.ndarray,
    labels: np.ndarray,
    attributes: dict[str, np.ndarray],
    hashes: Optional[np.ndarray],
    spec: EmbeddingSpec,
    cfg: BenchmarkConfig,
    methods: Sequence[str] = ("cosine", "euclidean", "logreg", "forest"),
    log: Log = log_stderr,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evaluation numbers of the float32 baseline, float16 storage, PCA whitened and PCA + float16,
    all on the same split, test pairs and query images. Returns (report, artefacts for reuse)."""
    from cbir.similarity.evaluation import pair_correlations, retrieval_metrics
    from cbir.gallery.labels import TASKS
    from cbir.similarity.training import fit_classifiers, split_and_pair

    split, pairs = split_and_pair(labels, hashes, {t: attributes[t] for t in TASKS}, n_pairs=cfg.n_pairs, seed=cfg.seed)
    test_pairs = {t: p["test"] for t, p in pairs.items()}
    rng = np.random.default_rng(cfg.seed)
    queries = np.sort(rng.choice(split.test, size=min(cfg.eval_queries, len(split.test)), replace=False))
    # the forest scores one query at a time (~0.1-0.5 s each at 11k images): a seeded random subset
    forest_queries = np.sort(rng.choice(queries, size=min(cfg.forest_eval_queries, len(queries)), replace=False))
    learned = [m for m in methods if get_method(m).learned]

    def fit_all(x: np.ndarray, variant_spec: EmbeddingSpec) -> ClassifierSet:
        log(f"representation: fitting {', '.join(learned)} per task on {x.shape[1]}-d")
        return fit_classifiers(x, pairs, split, variant_spec, learned, TASKS, seed=cfg.seed, progress=False)

    def evaluate_variant(
        name: str, x: np.ndarray, storage: str, classifiers: ClassifierSet, fit_s: float
    ) -> dict[str, Any]:
        index = EmbeddingIndex(x)
        res: dict[str, Any] = {
            "variant": name,
            "dim": int(x.shape[1]),
            "storage": storage,
            "bytes_per_vector": int(x.shape[1] * (2 if storage == "float16" else 4)),
            "classifier_fit_s": fit_s,
            "methods": {},
        }
        for m in methods:
            log(f"representation: evaluating {name} / {m}")
            corr = pair_correlations(m, x, test_pairs, classifiers)
            q = forest_queries if m == "forest" else queries
            retr = {rel: retrieval_metrics(m, index, attributes, q, rel, classifiers, k=cfg.k) for rel in TASKS}
            res["methods"][m] = {"correlation": corr, "retrieval": retr}
        return res

    variants = []
    t0 = time.perf_counter()
    base_clf = fit_all(embeddings, spec)
    variants.append(
        evaluate_variant(
            f"baseline {embeddings.shape[1]}-d float32", embeddings, "float32", base_clf, time.perf_counter() - t0
        )
    )
    f16 = float16_roundtrip(embeddings)
    variants.append(evaluate_variant(f"{embeddings.shape[1]}-d float16 storage", f16, "float16", base_clf, 0.0))
    del f16
    log(f"representation: fitting PCA-{cfg.pca_dim} (whitened) on {len(split.train)} training images")
    t0 = time.perf_counter()
    pca = PCAReduction.fit(embeddings[split.train], cfg.pca_dim, whiten=True, seed=cfg.seed)
    pca_fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    reduced = pca.transform(embeddings)
    transform_ms_per_vector = (time.perf_counter() - t0) * 1000.0 / len(embeddings)
    total_var = float(np.var(embeddings[split.train].astype(np.float64), axis=0, ddof=1).sum())
    pca_spec = EmbeddingSpec.from_dict({**spec.to_dict(), "dim": cfg.pca_dim})
    t0 = time.perf_counter()
    pca_clf = fit_all(reduced, pca_spec)
    variants.append(
        evaluate_variant(f"PCA-{cfg.pca_dim} whitened float32", reduced, "float32", pca_clf, time.perf_counter() - t0)
    )
    variants.append(
        evaluate_variant(f"PCA-{cfg.pca_dim} whitened float16", float16_roundtrip(reduced), "float16", pca_clf, 0.0)
    )
    report = {
        "gallery_size": int(len(embeddings)),
        "split": split.summary(),
        "test_pairs": {t: len(p) for t, p in test_pairs.items()},
        "queries": int(len(queries)),
        "forest_queries": int(len(forest_queries)),
        "k": cfg.k,
        "pca": {
            "dim": cfg.pca_dim,
            "whiten": True,
            "fitted_on": "training-split images only (no test leakage)",
            "fit_s": pca_fit_s,
            "transform_ms_per_vector": transform_ms_per_vector,
            "explained_variance_ratio": pca.explained_variance_ratio(total_var),
            "effective_dim_before_whitening": float(
                pca.explained_variance.sum() ** 2 / max((pca.explained_variance**2).sum(), 1e-300)
            ),
        },
        "float16_error": float16_error(embeddings),
        "notes": [
            "float16 rows reuse the classifiers fitted on the float32 vectors of the same dimension "
            "(storage changes, models do not); PCA rows refit every classifier on the reduced vectors.",
            f"Retrieval: {len(queries)} held-out query images (forest: a random {len(forest_queries)} of them) "
            "against the whole gallery, leave-one-out.",
        ],
        "variants": variants,
    }
    return report, {"classifiers": base_clf, "reduced": reduced, "split": split}
