"""Choose the hybrid method's weights per task on validation data only: the training images of a trained gallery
are split again (fit / validation); attribute classifiers and the learned whitening are refitted on the fit part,
and each weight quadruple (class, cosine, colour, instance) is judged on the validation part (pair Pearson,
class retrieval P@10, instance R@1 of edited copies, and how alike the right-class results are: within_class@10).
The held-out test images are never touched. The chosen weights go into a classifier folder's manifest
(`settings.hybrid_weights`), where the search reads them (cbir.similarity.hybrid.weights_for)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from cbir.gallery.dataset import Gallery
from cbir.hub import fetch_file
from cbir.index import EmbeddingIndex, l2_normalize, top_k
from cbir.similarity.attributes import AttributeClassifier
from cbir.search.loading import extractor_for
from cbir.similarity.classifiers import MANIFEST, PAIRS_FILE, ClassifierSet
from cbir.similarity.evaluation import OTHER_ATTRIBUTE, correlations, relevance_matrix, within_class
from cbir.similarity.hybrid import SETTING, gallery_instance_vectors
from cbir.similarity.instance import instance_queries
from cbir.similarity.pairs import (
    DEFAULT_TEST_FRACTION, load_pairs, sample_pairs, split_images, validation_split,
)
from cbir.similarity.training import fit_gallery_whitening
from cbir.similarity.whitening import DEFAULT_DIM, instance_vectors

GRID_CLASS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0)
GRID_COSINE = (0.0, 0.05, 0.1, 0.2)
GRID_COLOUR = (0.0, 0.05, 0.1, 0.2)  # w_instance = 1 - the other three


def choose(rows: list[dict], min_pearson: float, min_p10: float, instance_slack: float) -> dict:
    """The rule: of the rows within the Pearson and P@10 floors, those at most `instance_slack` under the best
    instance R@1; of them the most alike within class (within_class@10), then instance R@1, R@5, P@10, w_class."""
    ok = [r for r in rows if r.get("pearson", 1.0) >= min_pearson and r["p@10"] >= min_p10] or rows
    best = max(r["instance_r@1"] for r in ok)
    ok = [r for r in ok if r["instance_r@1"] >= best - instance_slack - 1e-9]
    return max(ok, key=lambda r: (r.get("within_class@10", 0.0), r["instance_r@1"], r["instance_r@5"], r["p@10"],
                                  r["w_class"]))


def grid() -> list[tuple[float, float, float, float]]:
    """Every (class, cosine, colour, instance) of the grids whose instance weight (the rest) is >= 0."""
    return [(a, c, d, max(0.0, round(1.0 - a - c - d, 3))) for a in GRID_CLASS for c in GRID_COSINE for d in GRID_COLOUR
            if 1.0 - a - c - d > -1e-9]


@dataclass(frozen=True)
class TuneOptions:
    """The validation cut, its sizes, and the rule's floors (see choose)."""

    val_fraction: float = 0.2
    pairs: int = 4000  # validation pairs per task
    instance: int = 300  # validation photos queried by their edited copies
    min_pearson: tuple[float, float] = (0.955, 0.935)  # type and colour floors (the targets plus a 0.005 margin)
    max_pearson_loss: float = 0.01  # a task's Pearson may also fall this far below attribute-only's
    instance_slack: float = 0.01  # weights this far under the best instance R@1 compete on within-class likeness
    whitening_dim: int = DEFAULT_DIM
    test_fraction: float = DEFAULT_TEST_FRACTION  # the split made when no classifier folder gives one
    seed: int = 0
    device: str = "auto"


def tune(gallery: str | os.PathLike, classifiers: Optional[str | os.PathLike] = None,
         options: TuneOptions = TuneOptions()) -> dict[str, Any]:
    """Judge every weight quadruple of the grid on validation; the report's "chosen" holds each task's weights.
    `classifiers`: a trained folder whose pairs.npz gives the split (else train_classifiers.py's split)."""
    args = options
    g = Gallery.load(gallery)
    if classifiers:
        _, split, _ = load_pairs(fetch_file(str(classifiers), PAIRS_FILE))
    else:
        split = split_images(g.labels, g.hashes, test_fraction=args.test_fraction, seed=args.seed)
    extractor, _ = extractor_for(g.spec, device=args.device)
    fit, val, tasks, clf, rows = validation_setup(g, split, args.val_fraction, args.seed, extractor, args.whitening_dim)
    print(f"fit {len(fit)} / validation {len(val)} images; attribute classifiers and whitening refitted on the fit part")
    index = EmbeddingIndex(g.embeddings[rows], g.descriptors[rows])
    pos = {int(r): i for i, r in enumerate(rows)}
    rng = np.random.default_rng(args.seed)
    pairs = pair_components(g, clf, tasks, val, args.pairs, rng)
    q = np.array([pos[int(r)] for r in val])
    attrs = {t: np.asarray(g.attribute(t)).astype(str)[rows] for t in tasks}
    sub = np.sort(rng.choice(len(val), size=min(args.instance, len(val)), replace=False))
    iq, idesc = instance_queries(g, val[sub], extractor, seed=args.seed)
    src_hash = np.asarray(g.hashes).astype(str)[val[sub]]
    hashes = np.asarray(g.hashes).astype(str)[rows]
    floors = dict(zip(("type", "colour"), args.min_pearson))
    chosen, grids = {}, {}
    for task in tasks + (["both"] if len(tasks) == 2 else []):
        rel = relevance_matrix({t: v[q] for t, v in attrs.items()}, attrs, task)
        rel[np.arange(len(q)), q] = False
        other = OTHER_ATTRIBUTE.get(task)
        alike = None if other not in attrs else attrs[other][q][:, None] == attrs[other][None, :]
        base = components(clf, task, g.embeddings[rows][q], g.descriptors[rows][q], index)
        inst = components(clf, task, iq, idesc, index)
        rows_out = []
        for w in grid():
            row = {"w_class": w[0], "w_cosine": w[1], "w_colour": w[2], "w_instance": w[3]}
            if task in pairs:  # a task's pairs are scored with that task's weights; "both" has no pair set
                a, c, d, wt, y = pairs[task]
                row["pearson"] = round(correlations(w[0] * a + w[1] * c + w[2] * d + w[3] * wt, y)["pearson"], 4)
            sc = sum(wi * m for wi, m in zip(w, base))
            sc[np.arange(len(q)), q] = -np.inf  # leave-one-out
            top10 = top_k(sc, 10)[0]
            ranked = np.take_along_axis(rel, top10, 1)
            found = hashes[top_k(sum(wi * m for wi, m in zip(w, inst)), 5)[0]] == src_hash[:, None]
            row.update({"p@1": round(float(ranked[:, 0].mean()), 4), "p@10": round(float(ranked.mean()), 4),
                        "instance_r@1": round(float(found[:, 0].mean()), 4),
                        "instance_r@5": round(float(found.any(1).mean()), 4)})
            if alike is not None:
                row["within_class@10"] = round(within_class(ranked, np.take_along_axis(alike, top10, 1)), 4)
            rows_out.append(row)
        attr_only = next(r for r in rows_out if r["w_class"] == 1.0)
        floor = max(floors.get(task, 0.0), attr_only.get("pearson", 0.0) - args.max_pearson_loss)
        chosen[task] = choose(rows_out, floor, attr_only["p@10"] - 0.01, args.instance_slack)
        grids[task] = rows_out
        print(f"{task}: attribute only {json.dumps(attr_only)}\n{task}: chosen {json.dumps(chosen[task])}", flush=True)
    rule = (f"per task, among the weights whose pair Pearson is >= {floors} (type, colour tasks) and >= attribute-only "
            f"- {args.max_pearson_loss}, whose P@10 is >= attribute-only - 0.01 and whose validation instance R@1 is at "
            f"most {args.instance_slack} under the best of them: the highest within-class likeness (within_class@10: "
            f"of the right-class results in the top 10, the share that also has the query's other attribute; not for "
            f"task both); ties: higher instance R@1, R@5, P@10, w_class")
    out = {"rule": rule, "chosen": chosen, "grid": grids, "fit_images": int(len(fit)), "validation_images": int(len(val)),
           "instance_queries": int(len(sub)), "whitening": clf.whitening.card if clf.whitening else None,
           "gallery": str(gallery), "seed": args.seed}
    return out


def write_weights(folder: str | os.PathLike, chosen: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Put each task's chosen weights into the classifier folder's manifest (settings.hybrid_weights)."""
    weights = {task: {k: float(row[k]) for k in ("w_class", "w_cosine", "w_colour", "w_instance")}
               for task, row in chosen.items()}
    path = Path(folder) / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.setdefault("settings", {})[SETTING] = weights
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return weights


def tune_into(gallery: str | os.PathLike, classifiers: Optional[str | os.PathLike], into: str | os.PathLike,
              options: TuneOptions = TuneOptions()) -> dict[str, dict[str, float]]:
    """tune, then write_weights into `into` (the demo's classifier folder): what scripts/make_demo.py runs."""
    return write_weights(into, tune(gallery, classifiers, options)["chosen"])




def validation_setup(g: Gallery, split, val_fraction: float, seed: int, extractor=None, whitening_dim: int = DEFAULT_DIM) -> tuple:
    """The split's training images split again (fit / validation), attribute classifiers (and, given an extractor,
    the learned whitening) refitted on the fit part: (fit, val, tasks, classifiers, rows of the validation
    gallery = every training image, no test image)."""
    fit, val = validation_split(g.labels, g.hashes, split.train, val_fraction, seed)
    tasks = [t for t in ("type", "colour") if t in g.tasks]
    clf = ClassifierSet({
        ("attribute", t): AttributeClassifier.fit(
            "attribute", t, g.embeddings, g.attribute(t), fit, g.spec, g.descriptors, g.colour_spec.to_dict(), seed
        ) for t in tasks
    })
    if extractor is not None and whitening_dim:
        clf.whitening = fit_gallery_whitening(g, fit, extractor, whitening_dim)
    return fit, val, tasks, clf, np.sort(np.concatenate([fit, val]))


def pair_components(g: Gallery, clf: ClassifierSet, tasks, val: np.ndarray, n_pairs: int, rng) -> dict[str, tuple]:
    """Per task, balanced validation pairs' attribute overlap, cosine, descriptor overlap, whitened cosine and
    same-label flag."""
    out = {}
    for t in tasks:
        pr = sample_pairs(g.attribute(t), val, n_pairs, rng)
        d = (g.descriptors[pr.left], g.descriptors[pr.right])
        a = clf.score_pairs("attribute", t, g.embeddings[pr.left], g.embeddings[pr.right], d)
        c = np.einsum("ij,ij->i", l2_normalize(g.embeddings[pr.left]), l2_normalize(g.embeddings[pr.right]))
        w = np.einsum("ij,ij->i", *(instance_vectors(clf.whitening, g.embeddings[s]) for s in (pr.left, pr.right)))
        out[t] = (a, c, np.einsum("ij,ij->i", *d), w, pr.label)
    return out


def components(clf: ClassifierSet, task: str, q: np.ndarray, qd: np.ndarray, index: EmbeddingIndex) -> tuple:
    """(Q, N) attribute, cosine, descriptor and whitened-cosine scores: the hybrid score is their weighted sum."""
    a = clf.score("attribute", task, q, index, qd)
    c = (l2_normalize(q) @ index.vectors.T) * index.inv_norms[None, :]
    w = instance_vectors(clf.whitening, q) @ gallery_instance_vectors(index, clf).T  # gallery whitened once per index
    return a, c, np.asarray(qd, np.float32) @ index.descriptors.T, w

