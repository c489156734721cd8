#!/usr/bin/env python
"""Issue 18 item 3: adapt the last stage(s) of EfficientNet-Lite2 on several photo sources at once.

The demo's ten garment types (CC0 photos: demo gallery + clothing-cc0-train) and the six colours (Apparel and
catalogue shots) are learnt together by heads on the pooled embedding; an Apparel or catalogue `shirt` may be any
top (shirt, tshirt or longsleeve), so its type loss is the log of the tops' summed probability (a partial label).
Only the training photos of benchmarks/sources.py's splits are read, and with `--validation` only the fit part of
them (its 80/20 cut), so the benchmark's validation and test photos stay unseen by the backbone.

    python benchmarks/finetune.py cache --gallery G --out CACHE/NAME --views plain flip --crop-mode border  # each source
    python benchmarks/finetune_sources.py --demo demo/gallery --apparel A --cc0-train T --catalogue K \
        --cache CACHE --out W.pth --from-block 5 [--validation]
    python benchmarks/finetune.py export --weights W.pth --out cbir/embed/weights/NAME.safetensors --dtype float16

The caches' crop mode (timm's; `border` = the whole photo padded to a square, the demo's since
tf_efficientnet_lite2_clothing_v2) goes into the weights' card: register the backbone with the same one.
Also tried (validation only, docs/quality.md): `--crop-views` (the caches' seeded crops of CC0 photos,
`cache --views crop1 ... crop4`) and `--from-block 4` (`cache --blocks 4` first).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.finetune import Heads, add_tail_args, log, save_tail  # noqa: E402
from benchmarks.finetune_model import CROP_VIEWS, Tail, base_model, embed_maps, load_maps  # noqa: E402
from benchmarks.sources import TOPS, fit_validation_splits, source_splits  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402

TYPE_SOURCES = ("demo", "cc0", "apparel", "catalogue")
SHIRT_IS_ANY_TOP = ("apparel", "catalogue")  # their `shirt` folders hold T-shirts and long sleeves too


def training_rows(galleries: dict[str, Gallery], validation: bool, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(train, held) rows per source as benchmarks/sources.py splits them; with `validation`, its fit/val cut."""
    splits = source_splits(galleries, seed)
    if validation:
        splits = fit_validation_splits(galleries, {k: train for k, (train, _) in splits.items()}, seed)
    return {"demo": (np.arange(len(galleries["demo"])), np.zeros(0, int)), **splits}


def type_targets(types: np.ndarray, source: str, classes: list[str]) -> np.ndarray:
    """(n, classes) allowed-class masks: one class, or every top for another source's `shirt`."""
    mask = np.zeros((len(types), len(classes)), bool)
    for i, t in enumerate(types.astype(str)):
        allowed = TOPS if (t == "shirt" and source in SHIRT_IS_ANY_TOP) else (t,)
        mask[i, [classes.index(a) for a in allowed if a in classes]] = True
    return mask


def view_table(first: int, n: int, have: list[str], views: tuple[str, ...]) -> np.ndarray:
    """(n, views) positions in the map bank of each training row's views, the `have` views stored from `first` on
    (view by view, n rows each); a view the cache lacks falls back to the photo (even column) or its mirror (odd)."""
    slot = {v: first + k * n for k, v in enumerate(have)}
    return np.stack([slot.get(v, slot[("plain", "flip")[j % 2]]) + np.arange(n) for j, v in enumerate(views)], 1)


def partial_label_loss(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """-log of the probability mass on the allowed classes (plain cross-entropy for a single class)."""
    return (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~allowed, -1e4), 1)).mean()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("demo", "apparel", "cc0-train", "catalogue"):
        p.add_argument(f"--{name}", required=True, help=f"the {name} gallery (frozen backbone)")
    p.add_argument("--cache", required=True, help="folder of finetune.py caches, one sub-folder per source")
    p.add_argument("--out", required=True)
    p.add_argument("--validation", action="store_true", help="train on the fit part only; report the val part")
    p.add_argument("--steps", type=int, default=600)
    add_tail_args(p)
    p.add_argument("--share", nargs=3, type=float, default=(0.5, 0.3, 0.2),
                   help="share of each batch from CC0 (demo + cc0-train), Apparel, catalogue")
    p.add_argument("--crop-views", action="store_true",
                   help="also draw the caches' cropN views (finetune.py cache --views crop1 ...); else photo and mirror")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()

    galleries = {"demo": Gallery.load(args.demo), "cc0": Gallery.load(args.cc0_train),
                 "apparel": Gallery.load(args.apparel), "catalogue": Gallery.load(args.catalogue)}
    cache_of = {"demo": "demo", "cc0": "cc0-train", "apparel": "apparel", "catalogue": "catalogue"}
    rows = training_rows(galleries, args.validation, args.seed)
    crop_modes = {json.loads((Path(args.cache) / c / "cache.json").read_text())["data_config"].get("crop_mode", "center")
                  for c in cache_of.values()}
    if len(crop_modes) != 1:
        raise SystemExit(f"the caches were made with different crop modes {sorted(crop_modes)}: remake them alike")
    args.crop_mode = crop_modes.pop()  # recorded in the weights' card: the backbone must be registered with it
    type_classes = sorted(set(galleries["demo"].types.astype(str)))
    colour_classes = sorted({str(c) for c in galleries["apparel"].colours if c is not None})
    share = dict(zip(("cc0", "apparel", "catalogue"), args.share))
    n_demo, n_cc0 = len(rows["demo"][0]), len(rows["cc0"][0])
    share["demo"] = share["cc0"] * n_demo / (n_demo + n_cc0)  # the CC0 share, split between its two galleries by size
    share["cc0"] -= share["demo"]

    views = ("plain", "flip", *CROP_VIEWS)
    bank, where, allowed, colour, weight, held = [], [], [], [], [], {}
    for src in TYPE_SOURCES:
        g, (tr, va) = galleries[src], rows[src]
        cache = Path(args.cache) / cache_of[src]
        maps = load_maps(cache, args.from_block, tuple(v for v in views if (cache / f"block{args.from_block}_{v}.npy").is_file()))
        where.append(view_table(sum(len(b) for b in bank), len(tr), list(maps), views))
        bank += [torch.from_numpy(np.asarray(m[tr])) for m in maps.values()]
        held[src] = (maps["plain"], va)
        types = np.asarray(g.types, dtype=object)[tr]
        allowed.append(type_targets(types, src, type_classes))
        cols = np.asarray(g.colours, dtype=object)[tr]
        colour.append(np.asarray([colour_classes.index(c) if c is not None else -100 for c in cols]))
        _, inv, counts = np.unique(types.astype(str), return_inverse=True, return_counts=True)
        w = 1.0 / np.sqrt(counts[inv])  # rare types drawn more often (the benchmark's P@1 is macro over types)
        weight.append(share[src] * w / w.sum())
        log(f"{src}: {len(tr)} training rows x {len(maps)} views ({', '.join(maps)}), {len(va)} held")
    bank, where = torch.cat(bank), torch.from_numpy(np.concatenate(where))
    allowed_t, colour_t = torch.from_numpy(np.concatenate(allowed)), torch.from_numpy(np.concatenate(colour))
    draw = torch.from_numpy(np.concatenate(weight))
    log(f"{len(draw)} training rows in memory ({time.time() - t0:.0f} s)")

    model, _, _ = base_model()
    tail = Tail(model, args.from_block).to(memory_format=torch.channels_last)
    heads = Heads(1280, {"type": len(type_classes), "colour": len(colour_classes)}, args.dropout)
    opt = torch.optim.AdamW([{"params": tail.parameters(), "lr": args.lr},
                             {"params": heads.parameters(), "lr": args.lr * args.head_lr_mult}],
                            weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.lr, args.lr * args.head_lr_mult],
                                                total_steps=args.steps, pct_start=0.15)
    history, run_loss, reported = [], 0.0, 0
    gen = torch.Generator().manual_seed(args.seed)
    for step in range(1, args.steps + 1):
        tail.train(); heads.train()
        idx = torch.multinomial(draw, args.batch, replacement=True, generator=gen)
        view = torch.randint(len(views) if args.crop_views else 2, (args.batch,), generator=gen)
        xb = bank[where[idx, view]].float()
        out = heads(tail(xb.contiguous(memory_format=torch.channels_last)))
        loss = partial_label_loss(out["type"], allowed_t[idx])
        has_colour = colour_t[idx] >= 0
        if has_colour.any():
            loss = loss + F.cross_entropy(out["colour"][has_colour], colour_t[idx][has_colour], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step(); sched.step()
        run_loss += float(loss.detach())
        if step % 50 == 0 or step == args.steps:
            rec = {"step": step, "loss": run_loss / (step - reported), "seconds": round(time.time() - t0)}
            run_loss, reported = 0.0, step
            if args.validation and (step % 200 == 0 or step == args.steps):
                rec["validation"] = head_accuracy(tail, heads, galleries, held, type_classes, colour_classes)
            history.append(rec)
            log(json.dumps(rec))
    save_tail(args.out, model, args, history, np.arange(len(draw)))
    log(f"wrote {args.out} in {time.time() - t0:.0f} s")
    return 0


def head_accuracy(tail: Tail, heads: nn.Module, galleries: dict, held: dict, type_classes: list[str],
                  colour_classes: list[str]) -> dict[str, float]:
    """The heads' accuracy on the held rows: CC0 type (macro over types), tops counted as any top elsewhere; colour."""
    heads.eval()
    res = {}
    for src, (maps, rows) in held.items():
        if not len(rows):
            continue
        with torch.inference_mode():
            out = heads(torch.from_numpy(embed_maps(tail, maps, rows)))
        g = galleries[src]
        ok = type_targets(np.asarray(g.types, dtype=object)[rows], src, type_classes)[
            np.arange(len(rows)), out["type"].argmax(1).numpy()]
        types = np.asarray(g.types).astype(str)[rows]
        res[f"{src} type macro"] = round(float(np.mean([ok[types == t].mean() for t in set(types)])), 4)
        cols = np.asarray(g.colours, dtype=object)[rows]
        if src != "cc0":
            pred = np.asarray(colour_classes)[out["colour"].argmax(1).numpy()]
            res[f"{src} colour"] = round(float((pred == cols.astype(str)).mean()), 4)
    return res


if __name__ == "__main__":
    raise SystemExit(main())
