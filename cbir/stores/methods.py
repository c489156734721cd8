"""Every similarity method as a vector-store search: (per-image stored vectors, query vector, metric).

A *space* is what a backend stores per image (the embedding, or `[g, g^2]` for logistic
regression); a *stored method* says which space it searches, how to turn query embeddings into
query vectors there, and optionally how to turn raw store scores into the method's score or to
rerank a shortlist. Adding a method whose score is an inner product of per-image vectors (e.g.
attribute probabilities) is one `register_space` plus one `register_stored_method`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from scipy.special import expit

from ..classifiers import ClassifierSet
from ..labels import TASKS

FOREST_SHORTLIST = 1000  # candidates the forest reranks (README: recall of this shortlist, measured)
BOTH_SHORTLIST = 200  # logistic regression, task "both": candidates reranked by P(type) * P(colour)

VectorFn = Callable[[np.ndarray, Optional[ClassifierSet]], np.ndarray]
QueryFn = Callable[[np.ndarray, str, Optional[ClassifierSet]], np.ndarray]
FinishFn = Callable[[np.ndarray, np.ndarray, str, Optional[ClassifierSet]], np.ndarray]
RerankFn = Callable[[np.ndarray, np.ndarray, str, Optional[ClassifierSet]], np.ndarray]


@dataclass(frozen=True)
class Space:
    """What a store holds per image: `vectors(embeddings, classifiers)` searched under `metric`."""

    name: str
    metric: str
    vectors: VectorFn


@dataclass(frozen=True)
class StoredMethod:
    """A similarity method run on a store: query vectors in `space`; raw scores -> method scores by
    `finish`; or, with `rerank`, a `shortlist` from the store rescored exactly on the embeddings."""

    name: str
    space: str
    query: QueryFn
    finish: Optional[FinishFn] = None
    rerank: Optional[RerankFn] = None
    shortlist: int = 0


SPACES: dict[str, Space] = {}
STORED_METHODS: dict[str, StoredMethod] = {}
RAW_SPACE = "euclidean"  # stores the embeddings as given: reranking fetches them from here


def register_space(space: Space) -> Space:
    SPACES[space.name] = space
    return space


def register_stored_method(method: StoredMethod) -> StoredMethod:
    if method.space not in SPACES:
        raise ValueError(f"stored method {method.name!r} needs space {method.space!r}; register it first")
    STORED_METHODS[method.name] = method
    return method


def get_stored_method(name: str) -> StoredMethod:
    try:
        return STORED_METHODS[name]
    except KeyError:
        raise ValueError(f"method {name!r} cannot run on a vector store; available: {', '.join(STORED_METHODS)}") from None


def spaces_for(methods: list[str]) -> list[str]:
    """The spaces a store must hold to serve `methods`, always with the raw space (reranks fetch from it)."""
    out = [RAW_SPACE]
    for name in methods:
        space = get_stored_method(name).space
        if space not in out:
            out.append(space)
    return out


def _identity(x: np.ndarray, _clf: Optional[ClassifierSet]) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _same_query(q: np.ndarray, _task: str, _clf: Optional[ClassifierSet]) -> np.ndarray:
    return np.asarray(q, dtype=np.float32)


# --- logistic regression as maximum inner product ------------------------------------------------
# logit(q, g) = c + v1.q^2 + v1.g^2 + (q * (v2 - 2 v1)).g  (cbir.classifiers), so with [g, g^2] stored
# per image the query-dependent part is an inner product with [q * (v2 - 2 v1), v1].


def _lr_terms(clf: Optional[ClassifierSet], task: str) -> tuple[float, np.ndarray, np.ndarray]:
    if clf is None:
        raise ValueError("method 'logreg' is a learned classifier: load classifiers first")
    terms = clf.get("logreg", task)._linear_terms()
    if terms is None:
        raise ValueError("the logistic-regression classifier is not a scaler + logistic pipeline")
    return terms


def _lr_project(x: np.ndarray, clf: Optional[ClassifierSet]) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if clf is not None and ("logreg", TASKS[0]) in clf:
        x = clf.get("logreg", TASKS[0]).project(x)
    return x


def lr_gallery_vectors(x: np.ndarray, clf: Optional[ClassifierSet]) -> np.ndarray:
    """[g, g^2] per image: what makes a logistic-regression logit an inner product."""
    g = _lr_project(x, clf)
    return np.hstack([g, np.square(g)]).astype(np.float32)


def lr_query_vectors(q: np.ndarray, task: str, clf: Optional[ClassifierSet]) -> np.ndarray:
    """[q * (v2 - 2 v1), v1] per query; task "both" sums the two tasks' logits (a shortlist, reranked)."""
    q = _lr_project(q, clf)
    out = np.zeros((len(q), 2 * q.shape[1]), np.float32)
    for t in TASKS if task == "both" else (task,):
        _, v1, v2 = _lr_terms(clf, t)
        out += np.hstack([q * (v2 - 2.0 * v1), np.broadcast_to(v1, q.shape)])
    return out


def lr_finish(raw: np.ndarray, q: np.ndarray, task: str, clf: Optional[ClassifierSet]) -> np.ndarray:
    """P(same) from the inner product: add the query's constant c + v1.q^2, then the sigmoid."""
    c, v1, _ = _lr_terms(clf, task)
    const = c + np.square(_lr_project(q, clf)) @ v1
    return np.where(np.isfinite(raw), expit(raw + const[:, None]), -np.inf).astype(np.float32)


def _pair_rerank(kind: str) -> RerankFn:
    def rerank(q: np.ndarray, cands: np.ndarray, task: str, clf: Optional[ClassifierSet]) -> np.ndarray:
        if clf is None:
            raise ValueError(f"method {kind!r} is a learned classifier: load classifiers first")
        return clf.score_pairs(kind, task, np.broadcast_to(q, cands.shape), cands)

    return rerank


def _lr_rerank(q: np.ndarray, cands: np.ndarray, task: str, clf: Optional[ClassifierSet]) -> np.ndarray:
    return _pair_rerank("logreg")(q, cands, task, clf)


register_space(Space("cosine", "cosine", _identity))
register_space(Space("euclidean", "l2", _identity))
register_space(Space("logreg", "ip", lr_gallery_vectors))
register_stored_method(StoredMethod("cosine", "cosine", _same_query))
register_stored_method(StoredMethod("euclidean", "euclidean", _same_query))
register_stored_method(StoredMethod("logreg", "logreg", lr_query_vectors, finish=lr_finish))
register_stored_method(
    StoredMethod("forest", "cosine", _same_query, rerank=_pair_rerank("forest"), shortlist=FOREST_SHORTLIST)
)


def plan(method: str, task: str) -> StoredMethod:
    """The stored method for one (method, task): logistic regression on "both" reranks a shortlist."""
    m = get_stored_method(method)
    if method == "logreg" and task == "both":
        return StoredMethod("logreg", "logreg", lr_query_vectors, rerank=_lr_rerank, shortlist=BOTH_SHORTLIST)
    return m
