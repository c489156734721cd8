#!/usr/bin/env python
"""Ablations for issue 9 on a real gallery: features (Lite2, + colour descriptor with/without foreground
weighting), scoring (cosine, pairwise LR / forest, attribute probabilities), retrieval tricks (query
expansion, horizontal-flip TTA), query latency, the self-similarity sanity, and a second photo source.

Uses the split and pairs of a `train_classifiers.py` folder, so its rows match `evaluate.py`.
Writes JSON (every number) and a markdown table. Run under `flock /tmp/cbir-heavy.lock`.
With `--append` the new rows join those already in `--out` (one table over several runs, e.g. several
backbones): every row names the run that measured it, and every run records its command and a digest of
its split and pairs, so runs that share the held-out pairs can be told apart from runs that do not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.similarity.attributes import AttributeClassifier  # noqa: E402
from cbir.similarity.classifiers import PAIRS_FILE, ClassifierSet, PairClassifier  # noqa: E402
from cbir.embed.colour import ColourSpec, colour_descriptors  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.similarity.evaluation import average_precision_at_k, correlations, evaluate, relevance_matrix  # noqa: E402
from cbir.embed.spec import EmbeddingSpec  # noqa: E402
from cbir.embed.extractor import FeatureExtractor  # noqa: E402
from cbir.index import EmbeddingIndex, l2_normalize, top_k  # noqa: E402
from cbir.similarity.pairs import ImageSplit, Pairs, load_pairs, sample_pairs  # noqa: E402
from cbir.similarity.registry import get_method  # noqa: E402

BACKBONE_LABELS = {"tf_efficientnet_lite2": "Lite2", "tf_efficientnet_lite2_apparel": "Lite2 (adapted)",
                   "vgg16.tv_in1k": "VGG16"}
CC0_TYPES = {"dress": "dress", "pants": "pants", "shirt": "shirt", "tshirt": "shirt", "shoes": "shoes", "shorts": "shorts"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cached_descriptors(gallery: Gallery, spec: ColourSpec, cache: Path) -> np.ndarray:
    """Colour descriptors of every gallery image for `spec`, cached by the gallery's paths."""
    f = cache / f"colour-{spec.weighting}.npz"
    paths = np.asarray(gallery._column("path")).astype(str)
    if f.is_file():
        z = np.load(f, allow_pickle=False)
        if np.array_equal(z["path"], paths) and json.loads(str(z["spec"])) == spec.to_dict():
            return z["desc"]
    if gallery.colour_spec == spec:
        desc = gallery.descriptors
    else:
        log(f"colour descriptors ({spec.weighting}) for {len(gallery)} images")
        desc = colour_descriptors((gallery.image_bytes(i)[0] for i in range(len(gallery))), spec)
    np.savez(f, path=paths, desc=desc, spec=json.dumps(spec.to_dict()))
    return desc


def backbone_label(spec: EmbeddingSpec) -> str:
    """Short backbone name for the Features column: "Lite2", "VGG16 random init (seed 0)", else the model name."""
    name = BACKBONE_LABELS.get(spec.model, spec.model)
    return f"{name} random init (seed {spec.seed})" if spec.is_random else name


def split_digest(split: ImageSplit, pairs: dict[str, dict[str, Pairs]]) -> str:
    """sha256 of the image split and every pair: equal digests = the same train/held-out images and pairs."""
    h = hashlib.sha256()
    for name, a in (("train", split.train), ("test", split.test)):
        h.update(f"{name}:{len(a)}".encode())  # lengths too: moving the boundary changes the digest
        h.update(np.asarray(a, dtype=np.int64).tobytes())
    for task in sorted(pairs):
        for part in sorted(pairs[task]):
            p = pairs[task][part]
            h.update(f"{task}/{part}:{len(p)}".encode())
            h.update(np.stack([p.left, p.right, p.label]).astype(np.int64).tobytes())
    return h.hexdigest()


def merge_reports(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new`'s run appended to `old`'s: rows of both (a re-measured row, same features and scoring, replaces the
    old one), runs of both (a report written before runs were recorded becomes run "r1"), second sources of both."""
    runs = list(old.get("runs") or [])
    old_rows = [dict(r) for r in old.get("rows", [])]
    if not runs and old_rows:
        gallery = old.get("gallery", {})
        runs = [{"id": "r1", "backbone": gallery.get("backbone"), "gallery_size": gallery.get("size"),
                 "split": old.get("split"), "queries": old.get("queries"), "command": None,
                 "note": "written before ablation.py recorded its runs"}]
    for r in old_rows:
        r.setdefault("run", "r1")
    run_id = f"r{len(runs) + 1}"
    new_run = {**new["runs"][0], "id": run_id}
    new_rows = [{**r, "run": run_id} for r in new["rows"]]
    ident = {(r["features"], r["scoring"]) for r in new_rows}
    rows = [r for r in old_rows if (r["features"], r["scoring"]) not in ident] + new_rows
    return {**old, "runs": runs + [new_run], "rows": rows,
            "second_source": {**old.get("second_source", {}), **new.get("second_source", {})}}


def latency_ms(method: str, x: np.ndarray, index: EmbeddingIndex, cs: Optional[ClassifierSet], d: Optional[np.ndarray],
               task: str = "both", n: int = 40) -> float:
    """Median ms to score one query against the whole gallery and take its top 10 (vector in, hits out)."""
    m = get_method(method)
    times = []
    for i in range(n + 3):
        q = x[i * 97 % len(x)]
        qd = None if d is None else d[i * 97 % len(x)][None]
        t = time.perf_counter()
        top_k(m.score(q, index, task=task, classifiers=cs, query_descriptors=qd), 10)
        times.append(time.perf_counter() - t)
    return float(np.median(times[3:]) * 1000)


def self_sanity(method: str, x: np.ndarray, index: EmbeddingIndex, cs: Optional[ClassifierSet],
                d: Optional[np.ndarray], queries: np.ndarray) -> dict[str, float]:
    """Share of queries (gallery images) that score at least as high against themselves as against any other."""
    m = get_method(method)
    out = {}
    for task in ("type", "colour", "both"):
        s = m.score(x[queries], index, task=task, classifiers=cs, query_descriptors=None if d is None else d[queries])
        own = s[np.arange(len(queries)), queries]
        out[task] = float((own >= s.max(axis=1) - 1e-6).mean())
    return out


def retrieval_variant(method: str, x: np.ndarray, qx: np.ndarray, index: EmbeddingIndex, cs: Optional[ClassifierSet],
                      d: Optional[np.ndarray], qd: Optional[np.ndarray], attrs: dict[str, np.ndarray],
                      queries: np.ndarray, expand: int = 0, k: int = 10) -> dict[str, dict[str, float]]:
    """Leave-one-out retrieval with query vectors `qx` (e.g. flip-averaged) and optional query expansion:
    the query's score row averaged with the rows of its top `expand` results."""
    m = get_method(method)
    out = {}
    for rel in ("type", "colour", "both"):
        s = m.score(qx, index, task=rel, classifiers=cs, query_descriptors=qd)
        if expand:
            idx, _ = top_k(s, expand, exclude=queries)
            for r in range(len(queries)):
                g = idx[r]
                s_g = m.score(x[g], index, task=rel, classifiers=cs, query_descriptors=None if d is None else d[g])
                s[r] = (s[r] + s_g.sum(axis=0)) / (1 + expand)
        idx, _ = top_k(s, k, exclude=queries)
        rel_all = relevance_matrix({a: v[queries] for a, v in attrs.items()}, attrs, rel)
        rel_all[np.arange(len(queries)), queries] = False
        ranked = np.take_along_axis(rel_all, idx, axis=1)
        out[rel] = {
            f"map@{k}": float(average_precision_at_k(ranked, rel_all.sum(axis=1), k).mean()),
            "p@1": float(ranked[:, 0].mean()),
            f"p@{k}": float(ranked.mean()),
        }
    return out


def refit_attribute(clf: AttributeClassifier, pair_score: str) -> AttributeClassifier:
    """The same fitted model with another pair score (no refit: the probabilities are identical)."""
    return AttributeClassifier(clf.estimator, {**clf.card, "pair_score": pair_score})


def second_source(root: Path, extractor: FeatureExtractor, colour: ColourSpec, cache: Path) -> dict[str, Any]:
    """Lite2 embeddings, colour descriptors and types of the CC0 photos of the five Apparel types."""
    f = cache / "cc0.npz"
    files = sorted(p for t in CC0_TYPES for p in (root / t).glob("*.jpg"))
    if f.is_file():
        z = np.load(f, allow_pickle=False)
        if len(z["x"]) == len(files) and z["x"].shape[1] == extractor.spec.dim:
            return {"x": z["x"], "d": z["d"], "type": z["type"]}
    log(f"embedding {len(files)} CC0 photos")
    x = extractor.embed_images(files, batch_size=16)
    d = colour_descriptors(files, colour)
    types = np.array([CC0_TYPES[p.parent.name] for p in files])
    np.savez(f, x=x, d=d, type=types)
    return {"x": x, "d": d, "type": types}


def second_source_eval(method: str, cc0: dict[str, Any], x: np.ndarray, index: EmbeddingIndex,
                       cs: Optional[ClassifierSet], gallery_types: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Type task on CC0: pair Pearson / ROC-AUC on balanced pairs; cross-source P@10 (CC0 query, Apparel gallery)."""
    m = get_method(method)
    pairs = sample_pairs(cc0["type"], np.arange(len(cc0["type"])), 2000, np.random.default_rng(seed))
    s = m.score_pairs(cc0["x"][pairs.left], cc0["x"][pairs.right], task="type", classifiers=cs,
                      descriptors=(cc0["d"][pairs.left], cc0["d"][pairs.right]))
    c = correlations(s, pairs.label)
    scores = m.score(cc0["x"], index, task="type", classifiers=cs, query_descriptors=cc0["d"])
    idx, _ = top_k(scores, 10)
    p10 = float((gallery_types[idx] == cc0["type"][:, None]).mean())
    return {"pearson": c["pearson"], "roc_auc": c["roc_auc"], "cross_source_p@10": p10,
            "pairs": len(pairs), "queries": int(len(cc0["x"]))}


def row_metrics(res: dict[str, Any], name: str) -> dict[str, Any]:
    corr, ret = res["correlation"][name], res["retrieval"][name]
    return {"correlation": {t: corr[t] for t in ("type", "colour")}, "retrieval": ret}


def markdown(rows: list[dict[str, Any]]) -> str:
    """The ablation table; a Run column when rows come from more than one run (`--append`)."""
    by_run = len({r.get("run") for r in rows}) > 1
    head = ("| Features | Scoring | Type P / S / AUC | Colour P / S / AUC | Type mAP@10 / P@1 | Colour mAP@10 / P@1 "
            "| Both mAP@10 / P@1 | Latency ms | Self-top |" + (" Run |" if by_run else ""))
    lines = [head, "|" + "---|" * (10 if by_run else 9)]

    def f(v: Any) -> str:
        return "–" if v is None or v != v else f"{v:.3f}"

    for r in rows:
        c, t = r.get("correlation"), r["retrieval"]
        cells = [r["features"], r["scoring"]]
        for task in ("type", "colour"):
            cells.append("–" if not c else " / ".join(f(c[task][k]) for k in ("pearson", "spearman", "roc_auc")))
        for rel in ("type", "colour", "both"):
            cells.append(f"{f(t[rel]['map@10'])} / {f(t[rel]['p@1'])}")
        cells.append("–" if r.get("latency_ms") is None else f"{r['latency_ms']:.1f}")
        san = r.get("self_top")
        cells.append("–" if san is None else f"{min(san.values()):.3f}")
        if by_run:
            cells.append(str(r.get("run") or "–"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--gallery", required=True, help="gallery with colour descriptors (scripts/add_colour.py)")
    p.add_argument("--classifiers", required=True, help="train_classifiers.py output on that gallery")
    p.add_argument("--cc0", default="../shared/data/clothing-cc0", help="second photo source (type folders)")
    p.add_argument("--cache", default="/work/cache/issue9", help="folder for cached descriptors/embeddings")
    p.add_argument("--out", default="results/ablation.json")
    p.add_argument("--queries", type=int, default=500, help="held-out query images for retrieval")
    p.add_argument("--forest-queries", type=int, default=150, help="fewer queries for the (slow) forest rows")
    p.add_argument("--skip", nargs="*", default=[], help="row keys to skip (also cc0, tricks)")
    p.add_argument("--only", nargs="*", default=None, help="run only these row keys (and cc0 / tricks if named)")
    p.add_argument("--backbone-label", default=None,
                   help="name of the features in the table (default: from the gallery, e.g. Lite2, "
                   "VGG16 random init (seed 0))")
    p.add_argument("--append", action="store_true",
                   help="add this run's rows to those already in --out instead of replacing the file")
    p.add_argument("--note", default="", help="free text kept with this run (e.g. how busy the machine was)")
    args = p.parse_args(argv)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def wanted(key: str) -> bool:
        return key not in args.skip and (args.only is None or key in args.only)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)

    g = Gallery.load(args.gallery)
    base = ClassifierSet.load(args.classifiers)
    pairs, split, _ = load_pairs(Path(args.classifiers) / PAIRS_FILE)
    test_pairs = {t: parts["test"] for t, parts in pairs.items()}
    attrs = {"type": g.types.astype(str), "colour": g.colours.astype(str)}
    x = g.embeddings
    d_border = cached_descriptors(g, ColourSpec(weighting="border"), cache)
    d_none_cache: dict[str, np.ndarray] = {}

    def d_none() -> np.ndarray:  # computed only when its row runs (11k images: minutes)
        if "d" not in d_none_cache:
            d_none_cache["d"] = cached_descriptors(g, ColourSpec(weighting="none"), cache)
        return d_none_cache["d"]
    rng = np.random.default_rng(0)
    queries = np.sort(rng.choice(split.test, size=min(args.queries, len(split.test)), replace=False))
    sanity_q = queries[:100]
    bb = args.backbone_label or backbone_label(g.spec)
    command = shlex.join(["python", "benchmarks/ablation.py", *(sys.argv[1:] if argv is None else argv)])
    run = {"id": "r1", "started": started, "command": command,
           "backbone": g.spec.to_dict(), "gallery_size": len(g), "split": split.summary(),
           "split_sha256": split_digest(split, pairs), "queries": int(len(queries)), "note": args.note}
    report: dict[str, Any] = {"gallery": {"size": len(g), "backbone": g.spec.to_dict()}, "split": split.summary(),
                              "queries": int(len(queries)), "runs": [run], "rows": [], "second_source": {}}
    previous = json.loads(Path(args.out).read_text()) if args.append and Path(args.out).is_file() else None

    def write() -> dict[str, Any]:
        out = report if previous is None else merge_reports(previous, report)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
        return out

    def fit_pair(kind: str, feats: np.ndarray) -> ClassifierSet:
        return ClassifierSet({(kind, t): PairClassifier.fit(kind, t, feats, pairs[t]["train"], split.train, g.spec)
                              for t in ("type", "colour")})

    def fit_attr(desc: Optional[np.ndarray], spec: Optional[ColourSpec]) -> ClassifierSet:
        return ClassifierSet({("attribute", t): AttributeClassifier.fit(
            "attribute", t, x, attrs[t], split.train, g.spec, desc, None if spec is None else spec.to_dict())
            for t in ("type", "colour")})

    fused = np.hstack([l2_normalize(x), d_border])  # both halves unit-norm: weight 1 each
    with_colour = np.hstack([x, d_border])  # the pair classifiers' input: embedding and descriptor side by side
    rows = [
        # key, features label, scoring label, method, vectors, descriptors, classifiers factory, n queries
        ("cosine", bb, "cosine", "cosine", x, None, lambda: None, None),
        ("attribute", f"{bb} + colour", "attribute (Bhattacharyya), default", "attribute", x, d_border,
         lambda: base, None),
        ("logreg", bb, "pairwise LR", "logreg", x, None, lambda: base, None),
        ("attribute-dot", f"{bb} + colour", "attribute (inner product p·q)", "attribute", x, d_border,
         lambda: ClassifierSet({k: refit_attribute(c, "dot") for k, c in base.classifiers.items() if k[0] == "attribute"}),
         None),
        ("attribute-emb", bb, "attribute (Bhattacharyya)", "attribute", x, None, lambda: fit_attr(None, None), None),
        ("attribute-none", f"{bb} + colour, unweighted centre", "attribute (Bhattacharyya)", "attribute", x, d_none,
         lambda: fit_attr(d_none(), ColourSpec(weighting="none")), None),
        ("cosine+colour", f"{bb} ⊕ colour (w=1)", "cosine", "cosine", fused, None, lambda: None, None),
        ("euclidean", bb, "inverse Euclidean", "euclidean", x, None, lambda: None, None),
        ("forest", bb, "pairwise forest", "forest", x, None, lambda: base, args.forest_queries),
        ("logreg+colour", f"{bb} + colour", "pairwise LR", "logreg", with_colour, None,
         lambda: fit_pair("logreg", with_colour), None),
        ("forest+colour", f"{bb} + colour", "pairwise forest", "forest", with_colour, None,
         lambda: fit_pair("forest", with_colour), args.forest_queries),
    ]
    fitted: dict[str, tuple[Any, ...]] = {}
    for key, feats, scoring, method, vx, vd, make, nq in rows:
        if not wanted(key):
            continue
        log(f"row {key}")
        t0 = time.time()
        cs = make()
        vd = vd() if callable(vd) else vd
        q = queries if nq is None else queries[: nq]
        res = evaluate(vx, attrs, test_pairs, q, [method], cs, n_queries=None, progress=False, descriptors=vd)
        index = EmbeddingIndex(vx, vd)
        row = {"key": key, "run": run["id"], "features": feats, "scoring": scoring, "method": method,
               "queries": int(len(q)),
               **row_metrics(res, method),
               "latency_ms": latency_ms(method, vx, index, cs, vd, n=10 if method == "forest" else 40),
               "self_top": self_sanity(method, vx, index, cs, vd, sanity_q[:20] if method == "forest" else sanity_q),
               "seconds": round(time.time() - t0, 1)}
        report["rows"].append(row)
        fitted[key] = (method, vx, vd, cs, index)
        log(f"  {json.dumps({k: row[k] for k in ('latency_ms', 'seconds')})}")
        write()

    need_extractor = wanted("tricks") or (wanted("cc0") and Path(args.cc0).is_dir())
    extractor = FeatureExtractor(g.spec.model, weights="random" if g.spec.is_random else "pretrained",
                                 seed=g.spec.seed or 0, device="cpu") if need_extractor else None
    if wanted("cc0") and not Path(args.cc0).is_dir():
        log(f"second source skipped: {args.cc0} is not a folder")
    if wanted("cc0") and Path(args.cc0).is_dir():
        cc0 = second_source(Path(args.cc0), extractor, g.colour_spec or ColourSpec(), cache)
        for key in ("cosine", "logreg", "forest", "attribute-emb", "attribute"):
            if key not in fitted:
                continue
            method, vx, vd, cs, index = fitted[key]
            log(f"second source: {key}")
            name = key if bb == "Lite2" else f"{bb}: {key}"  # the Lite2 keys stay as they were
            report["second_source"][name] = second_source_eval(method, cc0, x, EmbeddingIndex(x, vd), cs, attrs["type"])
        write()
    if wanted("tricks"):
        from PIL import ImageOps

        log(f"flip TTA: embedding {len(queries)} mirrored queries")
        flipped = extractor.embed_images([ImageOps.mirror(g.image(i)) for i in queries], batch_size=16)
        for key in ("cosine", "attribute"):
            if key not in fitted:
                continue
            method, vx, vd, cs, index = fitted[key]
            base_row = next(r for r in report["rows"] if r["key"] == key)
            qd = None if vd is None else vd[queries]
            for trick, qx, expand in (("flip TTA", (x[queries] + flipped) / 2, 0), ("query expansion (top 3)", x[queries], 3),
                                      ("flip TTA + query expansion", (x[queries] + flipped) / 2, 3)):
                log(f"row {key} + {trick}")
                ret = retrieval_variant(method, vx, qx, index, cs, vd, qd, attrs, queries, expand)
                report["rows"].append({"key": f"{key}+{trick}", "run": run["id"], "features": base_row["features"],
                                       "scoring": f"{base_row['scoring']} + {trick}", "method": method,
                                       "queries": int(len(queries)), "correlation": None, "retrieval": ret})
        write()

    final = write()
    md = markdown(final["rows"])
    Path(args.out).with_suffix(".md").write_text(md + "\n")
    print(md)
    print(json.dumps(final["second_source"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
