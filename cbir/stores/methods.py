"""Every similarity method as a vector-store search: (per-image stored vectors, query vector, metric).

A *space* is what a backend stores per image (the embedding, or `[g, g^2]` for logistic
regression, class-probability vectors for attributes); a *stored method* says which space it
searches, how to turn query embeddings into query vectors there, and optionally how to turn raw
store scores into the method's score or to rerank a shortlist. Adding a method whose score is an
inner product of per-image vectors is one `register_space` plus one `register_stored_method`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from scipy.special import expit

from cbir.similarity.classifiers import ClassifierSet
from cbir.similarity.hybrid import weights_for
from cbir.similarity.whitening import instance_vectors
from cbir.gallery.labels import TASKS
from cbir.index import l2_normalize

FOREST_SHORTLIST = 1000  # candidates the forest reranks (README: recall of this shortlist, measured)
BOTH_SHORTLIST = 200  # logistic regression, task "both": candidates reranked by P(type) * P(colour)

VectorFn = Callable[..., np.ndarray]  # (embeddings, classifiers[, descriptors]) -> (N, width)
QueryFn = Callable[..., np.ndarray]  # (query embeddings, task, classifiers[, descriptors]) -> (Q, width)
WidthFn = Callable[[int, Optional[ClassifierSet]], int]
FinishFn = Callable[[np.ndarray, np.ndarray, str, Optional[ClassifierSet]], np.ndarray]
RerankFn = Callable[[np.ndarray, np.ndarray, str, Optional[ClassifierSet]], np.ndarray]


@dataclass(frozen=True)
class Space:
    """What a store holds per image: `vectors(embeddings, classifiers)` searched under `metric`.

    With `descriptors`, `vectors` and the query function of the space's methods also take the images'
    colour descriptors (a third argument, None when the gallery has none); `width(dim, classifiers)` gives
    the column count when it cannot be had by embedding one zero vector. `learned`: the vectors come
    from fitted classifiers, so a store without them (build_index.py) cannot hold this space.
    """

    name: str
    metric: str
    vectors: VectorFn
    width: Optional[WidthFn] = None
    descriptors: bool = False
    learned: bool = False

    def columns(self, dim: int, classifiers: Optional[ClassifierSet]) -> int:
        if self.width is not None:
            return int(self.width(dim, classifiers))
        return int(self.vectors(np.zeros((1, dim), np.float32), classifiers).shape[1])

    def image_vectors(
        self, x: np.ndarray, classifiers: Optional[ClassifierSet], descriptors: Optional[np.ndarray]
    ) -> np.ndarray:
        """The stored rows of embeddings `x` (and their colour descriptors, for spaces that use them)."""
        return self.vectors(x, classifiers, descriptors) if self.descriptors else self.vectors(x, classifiers)


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

    def query_vectors(
        self, q: np.ndarray, task: str, classifiers: Optional[ClassifierSet], descriptors: Optional[np.ndarray]
    ) -> np.ndarray:
        """Query vectors in this method's space (colour descriptors passed on when the space uses them)."""
        if SPACES[self.space].descriptors:
            return self.query(q, task, classifiers, descriptors)
        return self.query(q, task, classifiers)


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


def methods_without_classifiers() -> list[str]:
    """Stored methods whose spaces need no fitted classifiers: what a store built before any training holds."""
    return [name for name, m in STORED_METHODS.items() if not SPACES[m.space].learned]


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
# logit(q, g) = c + v1.q^2 + v1.g^2 + (q * (v2 - 2 v1)).g  (cbir.similarity.classifiers), so with [g, g^2] stored
# per image the query-dependent part is an inner product with [q * (v2 - 2 v1), v1].


def _lr_terms(clf: Optional[ClassifierSet], task: str) -> tuple[float, np.ndarray, np.ndarray]:
    if clf is None:
        raise ValueError("method 'logreg' is a learned classifier: load classifiers first")
    terms = clf.get("logreg", task).linear_terms()
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


# --- attribute probabilities as inner product ---------------------------------------------------
# cbir.similarity.attributes: a task's pair score is v(p_a) . v(p_b) (v = sqrt for the Bhattacharyya score) and "both"
# is the product of the tasks' scores = kron(v_type, v_colour)(a) . kron(v_type, v_colour)(b)
# (ClassifierSet.image_vectors). One space stores the blocks [v_type | v_colour | v_type (x) v_colour] of
# the loaded tasks; a query fills its task's block and leaves zeros elsewhere, so the inner product is the score.


def _attribute_blocks(clf: Optional[ClassifierSet]) -> list[tuple[str, int]]:
    """(task, columns) of each block of the attribute space, in storage order."""
    if clf is None:
        raise ValueError("method 'attribute' is a learned classifier: load classifiers first")
    tasks = [t for t in TASKS if ("attribute", t) in clf]
    if not tasks:
        raise ValueError("no 'attribute' classifier is loaded: the attribute method cannot run")
    blocks = [(t, len(clf.get("attribute", t).classes)) for t in tasks]
    if len(tasks) == len(TASKS):
        blocks.append(("both", int(np.prod([w for _, w in blocks]))))
    return blocks


def attribute_width(_dim: int, clf: Optional[ClassifierSet]) -> int:
    return sum(w for _, w in _attribute_blocks(clf))


def attribute_gallery_vectors(
    x: np.ndarray, clf: Optional[ClassifierSet], descriptors: Optional[np.ndarray] = None
) -> np.ndarray:
    """[v_type | v_colour | v_type (x) v_colour] per image (the blocks of the tasks loaded)."""
    blocks = _attribute_blocks(clf)
    return np.hstack([clf.image_vectors("attribute", t, x, descriptors) for t, _ in blocks]).astype(np.float32)


def attribute_query_vectors(
    q: np.ndarray, task: str, clf: Optional[ClassifierSet], descriptors: Optional[np.ndarray] = None
) -> np.ndarray:
    """The query's vectors for `task` in that task's block, zeros in the others."""
    blocks = _attribute_blocks(clf)
    out = np.zeros((len(q), sum(w for _, w in blocks)), np.float32)
    start = 0
    for t, w in blocks:
        if t == task:
            out[:, start : start + w] = clf.image_vectors("attribute", task, q, descriptors)
            return out
        start += w
    for t in TASKS if task == "both" else (task,):
        clf.get("attribute", t)  # raises the message naming the classifier that is missing
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS + ('both',)}")


# --- hybrid as inner product -------------------------------------------------------------------
# cbir.similarity.hybrid: w_class * A + w_cosine * cos + w_colour * D + w_instance * W, each term an inner product,
# so the space stores the unweighted blocks [attribute blocks | unit(g) | d(g) | whitened(g)] and a query fills its
# task's attribute block, its unit embedding, its descriptor and its whitened vector, each scaled by the task's weight.


def _descriptor_width(clf: Optional[ClassifierSet]) -> int:
    """Columns of the colour term: the descriptor dimension the attribute classifiers read (0 without colour)."""
    colour = [clf.get("attribute", t).card.get("colour") for t, _ in _attribute_blocks(clf) if t != "both"]
    return int(next((c["dim"] for c in colour if c), 0))


def hybrid_width(dim: int, clf: Optional[ClassifierSet]) -> int:
    whitened = dim if clf is None or clf.whitening is None else clf.whitening.dim
    return attribute_width(dim, clf) + dim + _descriptor_width(clf) + whitened


def _hybrid_vectors(attribute: np.ndarray, x: np.ndarray, clf: Optional[ClassifierSet],
                    descriptors: Optional[np.ndarray], w: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)) -> np.ndarray:
    d = np.zeros((len(x), _descriptor_width(clf)), np.float32)
    if descriptors is not None and d.shape[1]:
        d = np.asarray(descriptors, np.float32)
    x = np.asarray(x, np.float32)
    parts = [attribute, l2_normalize(x), d, instance_vectors(None if clf is None else clf.whitening, x)]
    return np.hstack([wi * part for wi, part in zip(w, parts)]).astype(np.float32)


def hybrid_gallery_vectors(
    x: np.ndarray, clf: Optional[ClassifierSet], descriptors: Optional[np.ndarray] = None
) -> np.ndarray:
    """The blocks [attribute | unit embedding | colour descriptor | whitened embedding] per image, unweighted."""
    return _hybrid_vectors(attribute_gallery_vectors(x, clf, descriptors), x, clf, descriptors)


def hybrid_query_vectors(
    q: np.ndarray, task: str, clf: Optional[ClassifierSet], descriptors: Optional[np.ndarray] = None
) -> np.ndarray:
    """The query's blocks (its task's attribute vector, unit embedding, descriptor, whitened vector), each times
    the task's hybrid weight: the inner product with a stored row is the hybrid score."""
    w = weights_for(task, classifiers=clf)
    weights = (w.w_class, w.w_cosine, w.w_colour, w.w_instance)
    return _hybrid_vectors(attribute_query_vectors(q, task, clf, descriptors), q, clf, descriptors, weights)


register_space(Space("cosine", "cosine", _identity))
register_space(Space("euclidean", "l2", _identity))
register_space(Space("logreg", "ip", lr_gallery_vectors))
register_space(
    Space("attribute", "ip", attribute_gallery_vectors, width=attribute_width, descriptors=True, learned=True)
)
register_stored_method(StoredMethod("cosine", "cosine", _same_query))
register_stored_method(StoredMethod("euclidean", "euclidean", _same_query))
register_stored_method(StoredMethod("logreg", "logreg", lr_query_vectors, finish=lr_finish))
register_stored_method(StoredMethod("attribute", "attribute", attribute_query_vectors))
register_space(Space("hybrid", "ip", hybrid_gallery_vectors, width=hybrid_width, descriptors=True, learned=True))
register_stored_method(StoredMethod("hybrid", "hybrid", hybrid_query_vectors))
register_stored_method(
    StoredMethod("forest", "cosine", _same_query, rerank=_pair_rerank("forest"), shortlist=FOREST_SHORTLIST)
)


def plan(method: str, task: str) -> StoredMethod:
    """The stored method for one (method, task): logistic regression on "both" reranks a shortlist."""
    m = get_stored_method(method)
    if method == "logreg" and task == "both":
        return StoredMethod("logreg", "logreg", lr_query_vectors, rerank=_lr_rerank, shortlist=BOTH_SHORTLIST)
    return m
