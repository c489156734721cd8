"""Calibration of a classifier folder, on validation photos only: the served type and colour recipes refitted on the
fit parts of the sources' splits (cbir.train.splits, catalogue shots grouped by product), a temperature per task fitted
by the validation photos' NLL (cbir.similarity.calibration), and the hedge's settings chosen on the validation query
sets (HEDGE_RULE); both written into the folder's attribute-<task>.json cards. scripts/calibrate.py runs it;
benchmarks/shopper.py scores the served models on the test photos with the same figures (shopper_figures).
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from cbir.gallery.dataset import Gallery
from cbir.index import EmbeddingIndex, top_k
from cbir.similarity.attributes import refit_probabilities
from cbir.similarity.calibration import CARD_KEY as CALIBRATION_KEY
from cbir.similarity.calibration import calibration_report, card_with_temperature, fit_temperature
from cbir.similarity.classifiers import ClassifierSet
from cbir.similarity.evaluation import any_relevant_at_k, macro_mean, ndcg_at_k
from cbir.similarity.hedge import CARD_KEY as HEDGE_KEY
from cbir.similarity.hedge import NEVER, HedgeSettings, hedged_scores
from cbir.similarity.instance import keep_groups_apart, near_duplicate_groups
from cbir.similarity.registry import get_method
from cbir.train.attributes import Part, as_tops, shared_or_shirt
from cbir.train.splits import fit_validation_splits, source_splits

K = 10
PRODUCT_COSINE = 0.95  # catalogue shots at least this alike are one product's (chosen by looking at pairs, docs/ranking.md)
HEDGE_GRID = {"certain": (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01), "floor": (0.05, 0.1, 0.2, 0.3),
              "offset": (0.2, 0.5, 1.0, 2.0)}
HEDGE_RULE = ("the highest mean over the validation query sets (CC0, catalogue, and Apparel when given) of P@5 and "
              "any-right@5 (macro over types; the issue's two targets, weighed alike), ties to the higher nDCG@10; "
              "the plain ranking is a candidate")


def shopper_figures(scores: np.ndarray, gallery_types: np.ndarray, query_types: np.ndarray, k: int = K) -> dict[str, Any]:
    """P@1, P@5, any-right@5 and nDCG@10 of a (Q, N) score matrix, macro over the queries' types (micro beside)."""
    gallery_types, query_types = np.asarray(gallery_types).astype(str), np.asarray(query_types).astype(str)
    idx, _ = top_k(scores, k)
    hit = gallery_types[idx] == query_types[:, None]
    n_rel = (gallery_types[None, :] == query_types[:, None]).sum(axis=1)
    per_query = {"P@1": hit[:, :1].mean(1), "P@5": hit[:, :5].mean(1), "any@5": any_relevant_at_k(hit, 5),
                 f"nDCG@{k}": ndcg_at_k(hit, n_rel, k)}
    out: dict[str, Any] = {"queries": int(len(query_types))}
    for name, v in per_query.items():
        out[name], per = macro_mean(v, query_types)
        out[f"{name} micro"] = float(v.mean())
        out[f"{name} per type"] = per
    return out


MethodFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (query embeddings, descriptors) -> (Q, N) scores


def method_scorers(index: EmbeddingIndex, classifiers: ClassifierSet, settings: HedgeSettings,
                   task: str = "type") -> dict[str, MethodFn]:
    """The methods compared: the default (hybrid, hedged as the engine hedges it), the plain hybrid, cosine, attribute."""
    def plain(m: str) -> MethodFn:
        return lambda x, d: get_method(m).score(x, index, task=task, classifiers=classifiers, query_descriptors=d)

    def hedged(x: np.ndarray, d: np.ndarray) -> np.ndarray:
        return hedged_scores("hybrid", plain("hybrid")(x, d), x, index, task, classifiers, d, settings)

    return {"hybrid hedged (default)": hedged, "hybrid plain": plain("hybrid"), "cosine": plain("cosine"),
            "attribute": plain("attribute")}


def type_query_sets(held_out: dict[str, Part], demo_types: np.ndarray) -> dict[str, tuple[Part, np.ndarray, np.ndarray]]:
    """{source: (queries, gallery types, query types)}: an Apparel/catalogue shirt is right when a top comes back
    (cbir.train.attributes' rule)."""
    gtypes = np.asarray(demo_types, dtype=object)
    out = {}
    if "cc0" in held_out:
        q = held_out["cc0"].of_types(set(demo_types))
        out["cc0"] = (q, gtypes, q.types)
    for name in ("catalogue", "apparel"):
        if name in held_out:
            q = shared_or_shirt(held_out[name])
            out[name] = (q, as_tops(gtypes), as_tops(q.types))
    return out


def score_sources(queries: dict[str, tuple[Part, np.ndarray, np.ndarray]], scorers: dict[str, MethodFn]) -> list[dict]:
    """One row of shopper_figures per (source, method)."""
    rows = []
    for (src, (q, gt, qt)), (m, fn) in itertools.product(queries.items(), scorers.items()):
        rows.append({"source": src, "method": m, **shopper_figures(fn(q.x, q.d), gt, qt)})
    return rows


def choose_hedge(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The settings HEDGE_RULE picks from grid rows ({"settings", "P@5", "any@5", "nDCG@10"}, one being `NEVER`'s; a
    setting's rows of several query sets are averaged), with its mean figures."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(json.dumps(r["settings"], sort_keys=True), []).append(r)
    means = [{"settings": rs[0]["settings"], "query sets": [r.get("source", "") for r in rs],
              **{k: float(np.mean([r[k] for r in rs])) for k in ("P@1", "P@5", "any@5", f"nDCG@{K}")}}
             for rs in by.values()]
    return max(means, key=lambda r: (round((r["P@5"] + r["any@5"]) / 2, 6), r[f"nDCG@{K}"]))


def hedge_grid(q: Part, gtypes: np.ndarray, qtypes: np.ndarray, index: EmbeddingIndex,
               classifiers: ClassifierSet) -> list[dict[str, Any]]:
    """Every setting of HEDGE_GRID (and the plain ranking) on one validation query set."""
    base = get_method("hybrid").score(q.x, index, task="type", classifiers=classifiers, query_descriptors=q.d)
    rows = []
    for s in [NEVER] + [HedgeSettings(*v) for v in itertools.product(*HEDGE_GRID.values())]:
        f = shopper_figures(hedged_scores("hybrid", base, q.x, index, "type", classifiers, q.d, s), gtypes, qtypes)
        rows.append({"settings": s.to_dict(), "source": q.name, **{k: f[k] for k in ("P@1", "P@5", "any@5", f"nDCG@{K}")}})
    return rows


def product_splits(catalogue: Gallery, splits: tuple[np.ndarray, np.ndarray], fitval: tuple[np.ndarray, np.ndarray],
                   threshold: Optional[float] = None) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """cbir.train.splits' (train, test) and (fit, validation) rows of catalogue-dev with each product's shots
    (near-duplicate groups: cbir.similarity.instance) on one side: a product's held-out shots move to training."""
    groups = near_duplicate_groups(catalogue.embeddings, PRODUCT_COSINE if threshold is None else threshold,
                                   catalogue.hashes)
    return keep_groups_apart(*splits, groups), keep_groups_apart(*fitval, groups)


def labelled(parts: Sequence[Part], task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings, descriptors, labels) of the parts' rows that carry a `task` label."""
    xs, ds, ys = [], [], []
    for p in parts:
        values = p.types if task == "type" else p.colours
        keep = np.asarray([v is not None for v in values], bool)
        xs.append(p.x[keep]), ds.append(p.d[keep]), ys.append(values[keep])
    return np.vstack(xs), np.vstack(ds), np.concatenate(ys).astype(str)


@dataclass
class Sources:
    """The demo gallery and its served models, the source galleries and their splits (cbir.train.splits', with the
    catalogue's products kept on one side)."""

    demo: Gallery
    shipped: ClassifierSet
    galleries: dict[str, Gallery]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]  # (train, test)
    fitval: dict[str, tuple[np.ndarray, np.ndarray]]  # (fit, validation) of train

    @classmethod
    def load(cls, demo: str, classifiers: str, cc0_train: str, catalogue: str, apparel: Optional[str] = None,
             seed: int = 0, product_threshold: Optional[float] = None) -> "Sources":
        gal = {"cc0": Gallery.load(cc0_train), "catalogue": Gallery.load(catalogue)}
        if apparel:
            gal["apparel"] = Gallery.load(apparel)
        splits = source_splits(gal, seed)
        fitval = fit_validation_splits(gal, {k: tr for k, (tr, _) in splits.items()}, seed)
        splits["catalogue"], fitval["catalogue"] = product_splits(gal["catalogue"], splits["catalogue"],
                                                                  fitval["catalogue"], product_threshold)
        return cls(Gallery.load(demo), ClassifierSet.load(classifiers), gal, splits, fitval)

    @property
    def index(self) -> EmbeddingIndex:
        return EmbeddingIndex(self.demo.embeddings, self.demo.descriptors)

    def parts(self, which: int) -> dict[str, Part]:
        """which = 0: the fit parts, 1: the validation parts."""
        return {k: Part.of(f"{k} {('fit', 'validation')[which]}", self.galleries[k], rows[which])
                for k, rows in self.fitval.items()}


def validation_stage(src: Sources) -> dict[str, Any]:
    """The served recipes refitted on the fit parts; their temperatures fitted on the validation photos; the hedge's
    settings chosen there (HEDGE_RULE); every method's figures on the validation photos with those settings."""
    fit_parts, val_parts = src.parts(0), src.parts(1)
    demo_part = Part.of("demo gallery", src.demo, np.arange(len(src.demo)))
    index = src.index
    clf, probs, truth = refit_probabilities(src.shipped.get("attribute", "type"),
                                            labelled([demo_part, fit_parts["cc0"]], "type"), labelled([val_parts["cc0"]], "type"))
    calibration = {"type": calibration_report(probs, truth, fit_temperature(probs, truth))}
    clf.card = {**clf.card, CALIBRATION_KEY: calibration["type"]}
    cs = ClassifierSet({("attribute", "type"): clf}, src.shipped.whitening)
    queries = type_query_sets(val_parts, src.demo.types)
    grid = [r for qs in queries.values() for r in hedge_grid(*qs, index, cs)]
    chosen = choose_hedge(grid)
    print(f"temperature (type) {calibration['type']}; hedge chosen {chosen}", flush=True)
    if "apparel" in fit_parts:  # the served colour recipe: Apparel and catalogue shots
        _, cprobs, ctruth = refit_probabilities(src.shipped.get("attribute", "colour"),
                                                labelled([fit_parts[k] for k in ("apparel", "catalogue")], "colour"),
                                                labelled([val_parts[k] for k in ("apparel", "catalogue")], "colour"))
        calibration["colour"] = calibration_report(cprobs, ctruth, fit_temperature(cprobs, ctruth))
        print(f"temperature (colour) {calibration['colour']}", flush=True)
    rows = score_sources(queries, method_scorers(index, cs, HedgeSettings(**chosen["settings"])))
    print_rows("val ", rows)
    return {"calibration": calibration, "hedge grid": grid, "hedge chosen": chosen, "rows": rows}


def print_rows(stage: str, rows: list[dict[str, Any]]) -> None:
    """One progress line per row of score_sources."""
    for r in rows:
        print(f"{stage} {r['source']:9s} {r['method']:24s} P@1 {r['P@1']:.3f} P@5 {r['P@5']:.3f} any@5 "
              f"{r['any@5']:.3f} nDCG@10 {r[f'nDCG@{K}']:.3f}", flush=True)


def calibrate(src: Sources, folder: str) -> dict[str, Any]:
    """Write the validation stage's temperatures (type, colour) and hedge settings into the served classifier cards
    of `folder` (attribute-<task>.json); returns the validation report."""
    val = validation_stage(src)
    cards = {t: Path(folder) / f"attribute-{t}.json" for t in ("type", "colour")}
    source = "cbir.train.calibration validation stage (the served recipe refitted on the fit parts)"
    for task, path in cards.items():
        if task not in val["calibration"]:
            print(f"{path}: no {task} calibration (the colour recipe needs --apparel); left as it is", flush=True)
            continue
        card = card_with_temperature(json.loads(path.read_text()), val["calibration"][task], source)
        if task == "type":
            card[HEDGE_KEY] = {**val["hedge chosen"]["settings"], "rule": HEDGE_RULE,
                               "validation": {k: v for k, v in val["hedge chosen"].items() if k != "settings"}}
        path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"wrote {path}", flush=True)
    return val


def source_arguments(p: argparse.ArgumentParser) -> None:
    """The galleries and split options shopper.py and scripts/calibrate.py share."""
    p.add_argument("--demo", default="demo/gallery", help="the gallery type queries search")
    p.add_argument("--classifiers", default="demo/classifiers", help="the served models")
    p.add_argument("--cc0-train", required=True, help="gallery of clothing-cc0-train")
    p.add_argument("--catalogue", required=True, help="gallery of catalogue-dev")
    p.add_argument("--apparel", help="gallery of the Apparel dataset (without it: no Apparel rows, colour calibrated "
                                     "on the catalogue shots alone)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--product-threshold", type=float, default=PRODUCT_COSINE,
                   help="catalogue shots this alike (embedding cosine) count as one product")


def load_sources(args: argparse.Namespace) -> Sources:
    """The Sources source_arguments' options name."""
    return Sources.load(args.demo, args.classifiers, args.cc0_train, args.catalogue, args.apparel, args.seed,
                        args.product_threshold)
