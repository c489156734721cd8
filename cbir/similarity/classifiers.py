"""Learned pairwise similarity: per-task classifiers over symmetric features of two embeddings.

Pair features are `(a - b)**2` and `a * b` (symmetric in a and b). That choice keeps logistic
regression scoring a single matrix product against the gallery: the squared difference expands
to |q|^2 + |g|^2 - 2 q.g. The random forest has no such form, so it works on a PCA projection
of the embeddings (64-d by default) fitted on the training images, which keeps a full-gallery
query under a second (see README) instead of building an (N, 8192) feature matrix per query.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import skops.io as sio
from scipy.special import expit
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from cbir.similarity.attributes import AttributeClassifier, CardedClassifier, logistic_cv_kwargs
from cbir.embed.spec import BackboneMismatchError, EmbeddingSpec
from cbir.index import EmbeddingIndex
from cbir.gallery.labels import TASKS
from cbir.similarity.pairs import Pairs
from cbir.similarity.trust import TRUSTED_TYPES, load_trusted, skops_types
from cbir.similarity.whitening import WHITENING_FILE, Whitening

PAIR_FEATURES = "sqdiff+prod"
MANIFEST = "classifiers.json"
PAIRS_FILE = "pairs.npz"
_ROW_CHUNK = 8192

def pair_features(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Symmetric features of row-aligned vector pairs: [(a - b)^2, a * b]."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    return np.hstack([np.square(a - b), a * b])


@dataclass(frozen=True)
class ClassifierKind:
    """A learned method: how to build its estimator and whether it works on projected embeddings.

    `per_image` kinds (cbir.similarity.attributes) learn from labelled images, not pairs, and are their own class.
    """

    name: str
    label: str
    make_estimator: Callable[[int], Any]
    projection_dim: int | None
    per_image: bool = False


CLASSIFIER_KINDS: dict[str, ClassifierKind] = {}


def register_classifier(name: str, label: str, projection_dim: int | None = None) -> Callable:
    """Decorator registering an estimator factory `f(seed) -> sklearn estimator` under `name`."""

    def wrap(factory: Callable[[int], Any]) -> Callable[[int], Any]:
        CLASSIFIER_KINDS[name] = ClassifierKind(name, label, factory, projection_dim)
        return factory

    return wrap


LOGREG_CS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


@register_classifier("logreg", "Logistic regression")
def _logistic_regression(seed: int) -> Pipeline:
    """Standardised features, L2 strength chosen by 3-fold CV on the training pairs (8,192 features, few pairs)."""
    return make_pipeline(
        StandardScaler(),
        LogisticRegressionCV(
            Cs=list(LOGREG_CS), cv=3, scoring="neg_log_loss", max_iter=2000, random_state=seed,
            **logistic_cv_kwargs(),
        ),
    )


@register_classifier("forest", "Random forest", projection_dim=64)
def _random_forest(seed: int) -> RandomForestClassifier:
    return RandomForestClassifier(
        n_estimators=200, min_samples_leaf=2, max_features="sqrt", n_jobs=-1, random_state=seed
    )


def get_kind(name: str) -> ClassifierKind:
    try:
        return CLASSIFIER_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown classifier {name!r}; available: {', '.join(CLASSIFIER_KINDS)}") from None


def _chosen_hyperparameters(estimator: Any) -> dict[str, Any]:
    """Hyperparameters worth recording in the card (e.g. the C that cross-validation picked)."""
    last = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    if hasattr(last, "C_"):
        return {"C": float(np.ravel(last.C_)[0]), "Cs": list(LOGREG_CS)}
    return {k: v for k, v in last.get_params().items() if k in ("n_estimators", "min_samples_leaf", "max_features")}


class PairClassifier(CardedClassifier):
    """One fitted classifier for one task: P(same attribute | pair of embeddings)."""

    def __init__(self, estimator: Any, projection: PCA | None, card: dict[str, Any]) -> None:
        self.estimator = estimator
        self.projection = projection
        self.card = card
        self._key = uuid.uuid4().hex  # names this classifier's derived arrays in an EmbeddingIndex

    @classmethod
    def fit(
        cls,
        kind: str,
        task: str,
        embeddings: np.ndarray,
        pairs: Pairs,
        train_images: np.ndarray,
        spec: EmbeddingSpec,
        seed: int = 0,
        projection_dim: int | None = -1,
    ) -> "PairClassifier":
        """Fit on training pairs; a projection (if the kind uses one) is fitted on training images only."""
        k = get_kind(kind)
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        dim = k.projection_dim if projection_dim == -1 else projection_dim
        projection = None
        if dim is not None and dim < embeddings.shape[1]:
            n_comp = int(min(dim, len(train_images) - 1, embeddings.shape[1]))
            projection = PCA(n_components=n_comp, random_state=seed).fit(embeddings[train_images])
        clf = cls(k.make_estimator(seed), projection, {})
        x = clf.project(embeddings)
        clf.estimator.fit(pair_features(x[pairs.left], x[pairs.right]), pairs.label)
        clf.card = {
            "kind": kind,
            "task": task,
            "estimator": type(clf.estimator).__name__,
            "hyperparameters": _chosen_hyperparameters(clf.estimator),
            "pair_features": PAIR_FEATURES,
            "projection": None if projection is None else f"PCA({projection.n_components_})",
            "backbone": spec.to_dict(),
            "train_pairs": len(pairs),
            "train_positive": pairs.n_positive,
            "seed": seed,
            "metrics": {},
        }
        return clf

    def project(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return x if self.projection is None else self.projection.transform(x).astype(np.float32)

    def _proba(self, features: np.ndarray) -> np.ndarray:
        col = list(self.estimator.classes_).index(1)
        out = np.empty(len(features), dtype=np.float32)
        for s in range(0, len(features), _ROW_CHUNK):
            out[s : s + _ROW_CHUNK] = self.estimator.predict_proba(features[s : s + _ROW_CHUNK])[:, col]
        return out

    def score_pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """P(same) for row-aligned pairs (P, dim) x (P, dim); identical embeddings score 1 (see `score`)."""
        out = self._proba(pair_features(self.project(a), self.project(b)))
        out[np.all(np.asarray(a, np.float32) == np.asarray(b, np.float32), axis=1)] = 1.0
        return out

    def linear_terms(self) -> tuple[float, np.ndarray, np.ndarray] | None:
        """(c, v1, v2) with logit = c + v1.(a-b)^2 + v2.(a*b), when the estimator is scaler + logistic."""
        est = self.estimator
        if not (
            isinstance(est, Pipeline)
            and len(est.steps) == 2
            and isinstance(est.steps[0][1], StandardScaler)
            and isinstance(est.steps[1][1], LogisticRegression)
        ):
            return None
        scaler, lr = est.steps[0][1], est.steps[1][1]
        w = lr.coef_[0] if list(lr.classes_).index(1) == 1 else -lr.coef_[0]
        b = lr.intercept_[0] if list(lr.classes_).index(1) == 1 else -lr.intercept_[0]
        scale = scaler.scale_ if scaler.scale_ is not None else np.ones_like(w)
        mean = scaler.mean_ if scaler.mean_ is not None else np.zeros_like(w)
        v = w / scale
        c = float(b - np.dot(v, mean))
        d = len(v) // 2
        return c, v[:d].astype(np.float32), v[d:].astype(np.float32)

    def score(self, queries: np.ndarray, index: EmbeddingIndex) -> np.ndarray:
        """P(same) of every query against every gallery vector, (Q, N).

        An image identical to a gallery image scores 1 against it: the same image has the same attributes.
        The classifier never saw a pair of identical images and can score one near 0 (measured on real
        Lite2 features; tests/test_sanity.py), which is the first thing users check.
        """
        out = self._score(queries, index)
        qi, gi = index.identical(queries)
        out[qi, gi] = 1.0
        return out

    def _score(self, queries: np.ndarray, index: EmbeddingIndex) -> np.ndarray:
        gallery = index.vectors if self.projection is None else index.derived((self._key, "projected"), self.project)
        q = self.project(queries)
        terms = self.linear_terms()
        if terms is not None:
            c, v1, v2 = terms
            g_term = index.derived((self._key, "g2v1"), lambda _: np.square(gallery) @ v1)
            logits = c + (np.square(q) @ v1)[:, None] + g_term[None, :] + (q * (v2 - 2.0 * v1)) @ gallery.T
            return expit(logits).astype(np.float32)
        out = np.empty((len(q), len(gallery)), dtype=np.float32)
        for i, row in enumerate(q):  # one vectorised predict over the whole gallery per query
            out[i] = self._proba(pair_features(gallery, np.broadcast_to(row, gallery.shape)))
        return out

    def save(self, folder: str | os.PathLike) -> tuple[Path, Path]:
        """Write `<kind>-<task>.skops` (skops, not pickle) and its JSON card."""
        return self._save(folder, {"estimator": self.estimator, "projection": self.projection})

    @classmethod
    def load(cls, model_path: str | os.PathLike, card_path: str | os.PathLike) -> "PairClassifier":
        """Load a .skops file, refusing any type outside TRUSTED_TYPES."""
        obj = load_trusted(model_path)
        return cls(obj["estimator"], obj["projection"], json.loads(Path(card_path).read_text()))


def _descriptor_kw(clf: Any, name: str, value: Any) -> dict[str, Any]:
    """Pass colour descriptors only to classifiers that use them (pair classifiers see embeddings only)."""
    return {name: value} if getattr(clf, "uses_descriptor", False) else {}


class ClassifierSet:
    """The fitted classifiers by (kind, task); task "both" multiplies P(same type) and P(same colour)."""

    def __init__(self, classifiers: dict[tuple[str, str], PairClassifier], whitening: Optional[Whitening] = None,
                 settings: Optional[dict[str, Any]] = None) -> None:
        self.classifiers = dict(classifiers)
        self.whitening = whitening  # the hybrid's instance term (cbir.similarity.whitening); None = plain cosine
        self.settings = dict(settings or {})  # tuned settings the search reads (the manifest's "settings")

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.classifiers

    def get(self, kind: str, task: str) -> PairClassifier:
        try:
            return self.classifiers[(kind, task)]
        except KeyError:
            have = ", ".join(f"{k}/{t}" for k, t in sorted(self.classifiers)) or "none"
            raise ValueError(f"no {kind!r} classifier for task {task!r} is loaded (have: {have})") from None

    def _tasks(self, task: str) -> tuple[str, ...]:
        if task == "both":
            return TASKS
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS + ('both',)}")
        return (task,)

    def uses_descriptor(self, kind: str, task: str) -> bool:
        """Whether a (kind, task) score reads the queries' colour descriptors (so callers compute them only then)."""
        return any(getattr(self.classifiers.get((kind, t)), "uses_descriptor", False) for t in self._tasks(task))

    def score(
        self,
        kind: str,
        task: str,
        queries: np.ndarray,
        index: EmbeddingIndex,
        query_descriptors: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        out = [
            (c := self.get(kind, t)).score(queries, index, **_descriptor_kw(c, "query_descriptors", query_descriptors))
            for t in self._tasks(task)
        ]
        return np.prod(out, axis=0)

    def score_pairs(
        self,
        kind: str,
        task: str,
        a: np.ndarray,
        b: np.ndarray,
        descriptors: Optional[tuple[np.ndarray, np.ndarray]] = None,
    ) -> np.ndarray:
        out = [
            (c := self.get(kind, t)).score_pairs(a, b, **_descriptor_kw(c, "descriptors", descriptors))
            for t in self._tasks(task)
        ]
        return np.prod(out, axis=0)

    def image_vectors(
        self, kind: str, task: str, embeddings: np.ndarray, descriptors: Optional[np.ndarray] = None
    ) -> np.ndarray:
        """Per-image vectors whose inner product is the pair score, for per-image kinds (a vector store's rows).

        Task "both" is the row-wise Kronecker product of the tasks' vectors: its inner product is the
        product of the tasks' scores.
        """
        out = None
        for t in self._tasks(task):
            clf = self.get(kind, t)
            if not hasattr(clf, "image_vectors"):
                raise ValueError(f"the {kind!r} method scores pairs, it has no per-image vectors")
            v = clf.image_vectors(embeddings, descriptors)
            out = v if out is None else np.einsum("ni,nj->nij", out, v).reshape(len(v), -1)
        return out

    def check_backbone(self, spec: EmbeddingSpec, colour_spec: Any = None) -> None:
        """Every classifier must have been trained on embeddings (and colour descriptors) made as the gallery's."""
        if self.whitening is not None and "backbone" in self.whitening.card:
            EmbeddingSpec.from_dict(self.whitening.card["backbone"]).check_compatible(spec)
        for clf in self.classifiers.values():
            EmbeddingSpec.from_dict(clf.card["backbone"]).check_compatible(spec)
            trained = clf.card.get("colour")
            if trained is None:
                continue
            have = None if colour_spec is None else colour_spec.to_dict()
            if have is None or any(trained.get(k) != v for k, v in have.items() if k in trained):
                raise BackboneMismatchError(
                    f"the {clf.kind}/{clf.task} classifier was trained with the colour descriptor {trained}; "
                    f"the gallery has {have or 'none'}: rebuild the gallery or retrain the classifiers"
                )

    def save(self, folder: str | os.PathLike) -> list[Path]:
        """Write every classifier plus a manifest listing their files."""
        folder = Path(folder)
        written: list[Path] = []
        entries = []
        for (kind, task), clf in sorted(self.classifiers.items()):
            model_path, card_path = clf.save(folder)
            written += [model_path, card_path]
            entries.append({"kind": kind, "task": task, "model": model_path.name, "card": card_path.name})
        body: dict[str, Any] = {"classifiers": entries}
        if self.whitening is not None:
            written.append(self.whitening.save(folder))
            body["whitening"] = WHITENING_FILE
        if self.settings:
            body["settings"] = self.settings
        manifest = folder / MANIFEST
        manifest.write_text(json.dumps(body, indent=2) + "\n")
        return written + [manifest]

    @classmethod
    def load(cls, source: str | os.PathLike, revision: str | None = None) -> "ClassifierSet":
        """Load from a local folder or a Hub model repo (files fetched with hf_hub_download, pinned to `revision`)."""
        from cbir.hub import fetch_file

        manifest = json.loads(fetch_file(source, MANIFEST, revision=revision).read_text())
        out = {}
        for e in manifest["classifiers"]:
            model_path = fetch_file(source, e["model"], revision=revision)
            card_path = fetch_file(source, e["card"], revision=revision)
            loader = _CLASSES.get(e["kind"], PairClassifier)
            out[(e["kind"], e["task"])] = loader.load(model_path, card_path)
        whitening = manifest.get("whitening")
        return cls(out, Whitening.load(fetch_file(source, whitening, revision=revision)) if whitening else None,
                   manifest.get("settings"))


def classifier_class(kind: str) -> type:
    """The class that fits and loads a kind: PairClassifier, or a per-image class registered with it."""
    get_kind(kind)
    return _CLASSES.get(kind, PairClassifier)


_CLASSES: dict[str, type] = {}


def register_per_image_kind(name: str, label: str, model_cls: type) -> None:
    """Register a per-image learned method (its class fits on labelled images and scores pairs itself)."""
    CLASSIFIER_KINDS[name] = ClassifierKind(name, label, lambda seed: None, None, per_image=True)
    _CLASSES[name] = model_cls


register_per_image_kind("attribute", "Attribute probabilities", AttributeClassifier)
