"""The attribute models (type and colour probabilities) trained on several photo sources: candidates are fitted on
the fit part of each source, chosen on validation, refitted on every training photo and scored once on test photos.

Inputs are galleries built with scripts/build_index.py (same backbone and colour descriptor as the demo gallery;
the committed demo's backbone is tf_efficientnet_lite2_clothing_v2):

    for s in apparel-images:apparel clothing-cc0:cc0 clothing-cc0-train:cc0-train catalogue-dev:catalogue; do
        python scripts/build_index.py ../shared/data/${s%%:*} --model tf_efficientnet_lite2_clothing_v2 --out /tmp/src/${s##*:}
    done
    python scripts/train_attributes.py --apparel /tmp/src/apparel --cc0 /tmp/src/cc0 --cc0-train /tmp/src/cc0-train \
        --catalogue /tmp/src/catalogue --out results/sources.json

Held-out photos, never used for training or for choosing a setting: 30 % of clothing-cc0-train and the
demo's 20 held-out photos (type), 40 % of catalogue-dev (colour and type), the Apparel test split of
train_classifiers.py (seed 0). Type queries search the demo gallery with the hybrid method (and the attribute
method); P@K is the share of the top K with the query's type, macro over types. Colour is the colour
classifier's top class against the label. Apparel and catalogue `shirt` folders hold T-shirts and long sleeves
as well (CC0 tells shirt, tshirt and longsleeve apart): such a query is right when a top (any of the three)
comes back, and one candidate trains on them with the top-wear class the CC0-only model finds likeliest.
With --cc0-more, clothing-cc0-more's photos of the ten demo types are one more type candidate (its 30 % test cut
never trains); its seven other labels are not used.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from cbir.gallery.dataset import Gallery
from cbir.index import EmbeddingIndex, top_k
from cbir.similarity.attributes import AttributeClassifier
from cbir.similarity.classifiers import ClassifierSet
from cbir.similarity.hybrid import hybrid_scores
from cbir.train.splits import SHARED_TYPES, TOPS, fit_validation_splits, source_splits

TOP = "top (shirt, tshirt or longsleeve)"
PSEUDO = "CC0 + Apparel + catalogue, their shirts labelled by the CC0 model"


@dataclass(frozen=True)
class Part:
    """Rows of one gallery: embeddings, colour descriptors and labels, for training or as queries."""

    name: str
    rows: np.ndarray
    x: np.ndarray
    d: np.ndarray
    types: np.ndarray
    colours: np.ndarray

    @classmethod
    def of(cls, name: str, gallery: Gallery, rows: np.ndarray) -> "Part":
        rows = np.asarray(rows, dtype=int)
        return cls(name, rows, gallery.embeddings[rows], gallery.descriptors[rows],
                   np.asarray(gallery.types[rows], dtype=object), np.asarray(gallery.colours[rows], dtype=object))

    def where(self, mask: np.ndarray) -> "Part":
        return Part(self.name, *(getattr(self, f)[mask] for f in ARRAYS))

    def of_types(self, types: Sequence[str]) -> "Part":
        """The rows whose type is one of `types`."""
        return self.where(np.isin(self.types.astype(str), list(types)))

    def __len__(self) -> int:
        return len(self.rows)

    def plus(self, other: "Part", name: str) -> "Part":
        """Both parts' rows as one query set (rows of `other` are stored negated: another gallery)."""
        return Part(name, np.concatenate([self.rows, -1 - other.rows]),
                    *(np.concatenate([getattr(self, f), getattr(other, f)]) for f in ARRAYS[1:]))


ARRAYS = ("rows", "x", "d", "types", "colours")


def shared(part: Part) -> Part:
    """The rows whose type CC0 names the same way (see SHARED_TYPES)."""
    return part.of_types(SHARED_TYPES)


def shared_or_shirt(part: Part) -> Part:
    """The rows of SHARED_TYPES and the shirts (judged as tops)."""
    return part.of_types(SHARED_TYPES + ("shirt",))


MORE = "CC0 + clothing-cc0-more (its photos of the demo's ten types)"


def type_candidates(train: dict[str, Part]) -> dict[str, list[Part]]:
    """Training sources tried for the type model (the demo gallery's photos are always added)."""
    out = {
        "CC0 (demo 580 + cc0-train)": [train["cc0"]],
        "CC0 + Apparel + catalogue (dress, pants, shoes, shorts)":
            [train["cc0"], shared(train["apparel"]), shared(train["catalogue"])],
    }
    if "more" in train:  # clothing-cc0-more's seven other labels have no demo type: left out
        out[MORE] = [train["cc0"], train["more"].where(np.asarray([t is not None for t in train["more"].types]))]
    return out


def colour_candidates(train: dict[str, Part]) -> dict[str, list[Part]]:
    """Training sources tried for the colour model."""
    return {"Apparel": [train["apparel"]], "Apparel + catalogue": [train["apparel"], train["catalogue"]]}


CHOICE_RULE = ("highest mean over the validation query sets (CC0, catalogue, Apparel for type; catalogue, Apparel "
               "for colour) of type P@1 with the hybrid method, macro over types and per query (micro) / colour "
               "accuracy; shipped models are not candidates")


def choose(rows: list[dict[str, Any]], task: str) -> str:
    """The candidate with the best mean validation figure (CHOICE_RULE)."""
    keys, keep = (("P@1", "P@1 micro"), lambda r: r["method"] == "hybrid") if task == "type" else (("accuracy",), lambda r: True)
    means: dict[str, list[float]] = {}
    for r in rows:
        if keep(r) and not r["model"].startswith("shipped"):
            means.setdefault(r["model"], []).extend(r[k] for k in keys)
    return max(means, key=lambda m: float(np.mean(means[m])))


def write_models(folder: str, models: dict[str, AttributeClassifier], chosen: dict[str, str],
                 test: dict[str, Any], command: str) -> None:
    """Save the chosen models (refitted on every training photo) with cards naming sources and test figures."""
    for task, clf in models.items():
        rows = [{k: v for k, v in r.items() if "per " not in k and k != "model"}
                for r in test[task] if r["model"] == chosen[task]]
        clf.card = {**clf.card, "train_source": f"cbir/train/attributes.py: {chosen[task]}", "command": command,
                    "metrics_source": "held-out photos of each source (cbir/train/attributes.py, test stage)",
                    "metrics": {"held_out": rows}}
        for path in clf.save(folder):
            print(f"wrote {path}")


def fit(task: str, parts: Sequence[Part], spec: Any, colour_spec: dict, seed: int = 0) -> AttributeClassifier:
    """An attribute classifier for `task` on the rows of every part that carry a label for it."""
    xs, ds, ys = [], [], []
    for p in parts:
        values = p.types if task == "type" else p.colours
        keep = np.asarray([v is not None for v in values])
        xs.append(p.x[keep]), ds.append(p.d[keep]), ys.append(values[keep])
    x, d, y = np.vstack(xs), np.vstack(ds), np.concatenate(ys).astype(str)
    return AttributeClassifier.fit("attribute", task, x, y, np.arange(len(y)), spec, d, colour_spec, seed)


def type_precision(
    scores: np.ndarray, gallery_types: np.ndarray, query_types: np.ndarray, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, Any]:
    """P@K of garment type per query, macro over the queries' types (and per type)."""
    top, _ = top_k(scores, max(ks))
    hit = gallery_types[top] == query_types[:, None]
    types = sorted(set(query_types))
    out: dict[str, Any] = {"queries": int(len(query_types)),
                           "queries per type": {t: int((query_types == t).sum()) for t in types}}
    for k in ks:
        per_type = {t: float(hit[query_types == t, :k].mean()) for t in types}
        out[f"P@{k}"] = float(np.mean(list(per_type.values())))
        out[f"P@{k} micro"] = float(hit[:, :k].mean())  # per query: a type with 3 queries weighs 3
        out[f"P@{k} per type"] = per_type
    return out


def class_accuracy(clf: AttributeClassifier, part: Part, task: str = "colour") -> dict[str, Any]:
    """Top-class accuracy of a `task` classifier on `part`'s labelled rows, overall, macro and per class
    (key "per <task>"), with the main confusions."""
    values = part.types if task == "type" else part.colours
    keep = np.asarray([v is not None for v in values])
    truth = values[keep].astype(str)
    pred = np.asarray(clf.classes)[clf.probabilities(part.x[keep], part.d[keep]).argmax(1)]
    per = {c: float((pred[truth == c] == c).mean()) for c in sorted(set(truth))}
    pairs, counts = np.unique([f"{t}->{p}" for t, p in zip(truth, pred) if t != p], return_counts=True)
    worst = {str(a): int(n) for a, n in sorted(zip(pairs, counts), key=lambda kv: -kv[1])[:5]}
    return {"queries": int(keep.sum()), "accuracy": float((pred == truth).mean()),
            "macro": float(np.mean(list(per.values()))), f"per {task}": per, "confusions": worst}


def as_tops(types: np.ndarray) -> np.ndarray:
    """Types with shirt, tshirt and longsleeve as one `top`: how an Apparel/catalogue `shirt` query is judged."""
    return np.asarray([TOP if t in TOPS else t for t in types], dtype=object)


def pseudo_label_tops(part: Part, clf: AttributeClassifier) -> Part:
    """`part`'s shirt photos with the top-wear class `clf` finds likeliest (its other rows unchanged)."""
    shirts = np.flatnonzero(part.types == "shirt")
    if not len(shirts):
        return part
    cols = [clf.classes.index(t) for t in TOPS]
    types = part.types.copy()
    types[shirts] = np.asarray(TOPS, dtype=object)[clf.probabilities(part.x[shirts], part.d[shirts])[:, cols].argmax(1)]
    return replace(part, types=types)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", default="demo/gallery", help="the gallery type queries search")
    p.add_argument("--demo-classifiers", default="demo/classifiers", help="the shipped models (the baseline)")
    p.add_argument("--holdout", default="demo/holdout.json", help="demo photos kept out of the demo gallery")
    p.add_argument("--apparel", required=True)
    p.add_argument("--cc0", required=True, help="gallery of all of clothing-cc0 (for the held-out photos)")
    p.add_argument("--cc0-train", required=True)
    p.add_argument("--catalogue", required=True)
    p.add_argument("--cc0-more", help="gallery of clothing-cc0-more: a type candidate (its held-out 30 %% never trains)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--write", help="save the chosen attribute-type/-colour models here (e.g. demo/classifiers)")
    p.add_argument("--validation-only", action="store_true",
                   help="stop after the validation stage (exploring settings without seeing a test figure)")
    args = p.parse_args(argv)
    if args.validation_only and args.write:
        p.error("--write saves the test stage's refitted models: drop --validation-only")
    t0 = time.time()

    demo, apparel = Gallery.load(args.demo), Gallery.load(args.apparel)
    cc0, cc0_train, catalogue = Gallery.load(args.cc0), Gallery.load(args.cc0_train), Gallery.load(args.catalogue)
    colour_spec = demo.colour_spec.to_dict()
    for g in (apparel, cc0, cc0_train, catalogue, *([Gallery.load(args.cc0_more)] if args.cc0_more else [])):
        if g.spec.to_dict() != demo.spec.to_dict() or g.colour_spec.to_dict() != colour_spec:
            raise SystemExit("every gallery must be built with the demo's backbone and colour descriptor")

    held = {Path(h).stem for h in json.loads(Path(args.holdout).read_text())["held_out"]}
    demo_hold = Part.of("demo held-out", cc0, np.flatnonzero([i in held for i in cc0.ids]))
    gal = {"cc0": cc0_train, "catalogue": catalogue, "apparel": apparel}
    if args.cc0_more:
        gal["more"] = Gallery.load(args.cc0_more)
    splits = source_splits(gal, args.seed)
    (cc0_tr, cc0_te), (cat_tr, cat_te), (app_tr, app_te) = (splits[k] for k in ("cc0", "catalogue", "apparel"))
    shipped = ClassifierSet.load(args.demo_classifiers)
    stale = shipped.get("attribute", "colour").card.get("colour") != colour_spec  # shipped before a descriptor change
    if stale:
        print("the shipped attribute models use another colour descriptor than the galleries: not scored", flush=True)
    index = EmbeddingIndex(demo.embeddings, demo.descriptors)
    demo_part = Part.of("demo gallery", demo, np.arange(len(demo)))

    def stage(name: str, train: dict[str, Part], held_out: dict[str, Part]) -> dict[str, Any]:
        """Fit every candidate on `train`, score it on `held_out` (validation or test)."""
        print(f"== {name}", flush=True)
        type_models = {**({} if stale else {"shipped (demo 70 % split, 410 photos)": shipped.get("attribute", "type")}),
                       **{k: fit("type", [demo_part, *srcs], demo.spec, colour_spec, args.seed)
                          for k, srcs in type_candidates(train).items()}}
        cc0_model = type_models["CC0 (demo 580 + cc0-train)"]
        tops = [pseudo_label_tops(shared_or_shirt(train[k]), cc0_model) for k in ("apparel", "catalogue")]
        type_models[PSEUDO] = fit("type", [demo_part, train["cc0"], *tops], demo.spec, colour_spec, args.seed)
        colour_models = {**({} if stale else {"shipped (Apparel train split)": shipped.get("attribute", "colour")}),
                         **{k: fit("colour", srcs, demo.spec, colour_spec, args.seed)
                            for k, srcs in colour_candidates(train).items()}}
        gallery_types = np.asarray(demo.types, dtype=object)
        cc0_queries = held_out["cc0"].of_types(set(demo.types))
        queries = {"cc0": (cc0_queries, gallery_types, cc0_queries.types)}
        for qname in ("catalogue", "apparel"):  # an Apparel/catalogue shirt is right when a top comes back
            q = shared_or_shirt(held_out[qname])
            queries[qname] = (q, as_tops(gallery_types), as_tops(q.types))
        type_rows, colour_rows = [], []
        for mname, clf in type_models.items():
            cs = ClassifierSet({("attribute", "type"): clf}, shipped.whitening)  # the demo's whitening, as the app has it
            for qname, (q, gtypes, qtypes) in queries.items():
                for method in ("hybrid", "attribute"):
                    s = (hybrid_scores(q.x, index, "type", cs, q.d) if method == "hybrid"
                         else cs.score("attribute", "type", q.x, index, q.d))
                    row = {"model": mname, "query set": held_out[qname].name, "method": method,
                           **type_precision(s, gtypes, qtypes)}
                    type_rows.append(row)
                    print(f"type   {mname[:44]:44s} {qname:9s} {method:9s} P@1 {row['P@1']:.3f} "
                          f"P@5 {row['P@5']:.3f} micro P@1 {row['P@1 micro']:.3f} (n={row['queries']})", flush=True)
        for mname, clf in colour_models.items():
            for qname in ("catalogue", "apparel"):
                row = {"model": mname, "query set": held_out[qname].name, **class_accuracy(clf, held_out[qname])}
                colour_rows.append(row)
                print(f"colour {mname[:44]:44s} {qname:9s} acc {row['accuracy']:.3f} macro {row['macro']:.3f} "
                      f"{row['confusions']}", flush=True)
        sizes = {f"train {k}": len(v) for k, v in train.items()} | {f"{k} queries": len(v) for k, v in held_out.items()}
        return {"sizes": sizes, "type": type_rows, "colour": colour_rows,
                "models": {"type": type_models, "colour": colour_models}}

    fit_rows = fit_validation_splits(gal, {k: train for k, (train, _) in splits.items()}, args.seed)
    val = stage("validation", {k: Part.of(f"{k} fit", gal[k], f) for k, (f, _) in fit_rows.items()},
                {k: Part.of(f"{k} validation", gal[k], v) for k, (_, v) in fit_rows.items() if k != "more"})
    chosen = {task: choose(val[task], task) for task in ("type", "colour")}
    print(f"chosen on validation: {chosen}", flush=True)
    stages = {"validation": val}
    if not args.validation_only:
        test_cc0 = Part.of("cc0 test", cc0_train, cc0_te).plus(demo_hold, "CC0 held-out (cc0-train 30 % + demo 20)")
        stages["test"] = stage(
            "test", {"cc0": Part.of("cc0 train", cc0_train, cc0_tr), "catalogue": Part.of("catalogue train", catalogue, cat_tr),
                     "apparel": Part.of("apparel train", apparel, app_tr),
                     **({"more": Part.of("cc0-more train", gal["more"], splits["more"][0])} if "more" in gal else {})},
            {"cc0": test_cc0, "catalogue": Part.of("catalogue held-out 40 %", catalogue, cat_te),
             "apparel": Part.of("Apparel test split", apparel, app_te)})
    command = "python scripts/train_attributes.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    if args.write:
        test = stages["test"]
        write_models(args.write, {t: test["models"][t][chosen[t]] for t in chosen}, chosen, test, command)
    for st in stages.values():
        st.pop("models")
    report = {
        "command": command,
        "seconds": round(time.time() - t0, 1),
        "chosen on validation": chosen, "rule": CHOICE_RULE,
        **stages,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
