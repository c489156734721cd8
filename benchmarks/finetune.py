#!/usr/bin/env python
"""Issue 9 item 4: adapt the last stage(s) of EfficientNet-Lite2 on the TRAINING images of the split.

Cheap on a CPU: the frozen stem..blocks[k-1] runs once per image (ONNX Runtime; `--views plain flip` adds
the mirrored photo, else training mirrors the maps; `cropN` seeded crops of it); the inputs of blocks[5] and
blocks[6] (`--blocks 4` adds blocks[4]) are cached as float16 maps; a later run adds views or blocks to a cache.
Training then runs only blocks[k:] + conv_head + bn2 with type, colour and colour_type heads (cross-entropy).
Held-out images are never used for training or for choosing hyper-parameters (a validation slice of the training
images is).

    python benchmarks/finetune.py cache  --gallery G --out CACHE             # frozen maps of every photo
    python benchmarks/finetune.py train  --gallery G --cache CACHE --out W.pth --from-block 6
    python benchmarks/finetune.py embed  --gallery G --cache CACHE --weights W.pth --out G2   # new gallery
    python benchmarks/finetune.py check  --gallery G2 --weights W.pth                        # maps == real model
    python benchmarks/finetune.py export --weights W.pth --out cbir/weights/NAME.safetensors   # the registry's file
    python benchmarks/finetune.py cc0    --gallery G2 --classifiers C2 --cache DIR --out J    # second photo source

G2 keeps G's rows, images and colour descriptors, with the adapted embeddings; then
scripts/train_classifiers.py and scripts/evaluate.py measure it exactly like the baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.finetune_model import (  # noqa: E402
    CACHED_BLOCKS, CROP_MODES, CROP_VIEWS, CUT_BLOCKS, Tail, adapted_model, base_model, embed_maps, load_maps,
    training_view, trunk_session,
)
from cbir.embed.backbones import DEFAULT_MODEL, file_sha256  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.embed.spec import EmbeddingSpec  # noqa: E402
from cbir.images import load_image  # noqa: E402
from cbir.similarity.training import make_pairs  # noqa: E402

def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cmd_cache(args: argparse.Namespace) -> None:
    """Frozen maps for every gallery image, as stored and flipped (float16 .npy memmaps)."""
    torch.set_num_threads(args.threads)
    gallery = Gallery.load(args.gallery)
    model, transform, cfg = base_model(args.crop_mode)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = len(gallery)
    blocks = tuple(sorted(args.blocks))
    session = trunk_session(model, cfg, out, args.threads, blocks)  # ~3.5x less CPU than torch here
    probe = session.run(None, {"x": np.zeros((1, *cfg["input_size"]), np.float32)})
    shapes = {b: tuple(t.shape[1:]) for b, t in zip(blocks, probe)}
    maps = {
        (b, v): np.lib.format.open_memmap(out / f"block{b}_{v}.npy", mode="w+", dtype=np.float16, shape=(n, *s))
        for b, s in shapes.items() for v in args.views
    }
    images = gallery.dataset.with_format("arrow", columns=["image"])

    class Decode(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            stored = images[i].column("image")[0].as_py()
            photo = load_image(stored.get("bytes") or stored.get("path"))
            return {v: transform(training_view(photo, v, i)) for v in args.views if v in CROP_VIEWS} | {
                "photo": transform(photo)}

    loader = torch.utils.data.DataLoader(Decode(), batch_size=args.batch, num_workers=1)
    t0, done = time.time(), 0
    for batch in loader:
        x = batch["photo"]
        for v in args.views:
            xv = torch.flip(x, dims=[3]) if v == "flip" else batch.get(v, x)
            for b, t in zip(blocks, session.run(None, {"x": xv.numpy()})):
                maps[(b, v)][done:done + len(x)] = t.astype(np.float16)
        done += len(x)
        if done % (args.batch * 10) == 0 or done == n:
            log(f"cached {done}/{n} ({done / (time.time() - t0):.1f} img/s)")
    for m in maps.values():
        m.flush()
    earlier = json.loads((out / "cache.json").read_text()) if (out / "cache.json").is_file() else {}
    views = list(dict.fromkeys([*earlier.get("views", []), *args.views]))  # later runs add views or blocks
    shapes = {**{int(b): s for b, s in earlier.get("shapes", {}).items()}, **shapes}
    (out / "cache.json").write_text(json.dumps({
        "gallery": str(args.gallery), "n": n, "model": DEFAULT_MODEL, "data_config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        "views": views, "shapes": {str(b): list(s) for b, s in shapes.items()}, "seconds": round(time.time() - t0, 1),
    }, indent=2))
    log(f"done in {time.time() - t0:.0f} s")


def split_indices(gallery: Gallery, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fit, val, test): the library's default split; fit/val are a stratified cut of its TRAINING images."""
    split, _ = make_pairs(gallery, seed=0)
    labels = gallery.labels.astype(str)
    rng = np.random.default_rng(seed)
    fit, val = [], []
    for lab in np.unique(labels[split.train]):
        members = rng.permutation(split.train[labels[split.train] == lab])
        n_val = int(round(len(members) * val_fraction))
        val.append(members[:n_val])
        fit.append(members[n_val:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(val)), split.test


def class_codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    names = sorted(set(values.astype(str)))
    return np.searchsorted(names, values.astype(str)), names


class Heads(nn.Module):
    """Linear type / colour / colour_type heads on the 1280-d embedding (dropout first)."""

    def __init__(self, dim: int, sizes: dict[str, int], dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({f"head_{k}": nn.Linear(dim, n) for k, n in sizes.items()})  # "type" is taken

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.drop(z)
        return {k.removeprefix("head_"): h(z) for k, h in self.heads.items()}


def probe_accuracy(z_fit: np.ndarray, z_val: np.ndarray, y_fit: dict, y_val: dict,
                   d_fit: np.ndarray | None = None, d_val: np.ndarray | None = None) -> dict[str, float]:
    """Validation accuracy of a per-task logistic probe on [embedding, colour descriptor] (the attribute idea)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if d_fit is not None:
        z_fit, z_val = np.hstack([z_fit, d_fit]), np.hstack([z_val, d_val])
    acc, pred = {}, {}
    for k in y_fit:
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=0.05)).fit(z_fit, y_fit[k])
        pred[k] = clf.predict(z_val)
        acc[k] = float((pred[k] == y_val[k]).mean())
    if "type" in pred and "colour" in pred:
        acc["type&colour"] = float(((pred["type"] == y_val["type"]) & (pred["colour"] == y_val["colour"])).mean())
    return acc


def cmd_train(args: argparse.Namespace) -> None:
    """Fine-tune blocks[from_block:] + conv_head + bn2 with CE heads on the training images' cached maps."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gallery = Gallery.load(args.gallery)
    fit, val, test = split_indices(gallery, args.val_fraction, args.seed)
    log(f"split: fit {len(fit)}, val {len(val)} (both from the training images), test {len(test)} untouched")
    if args.final:  # train on every training image (fit + val); val numbers are then not held out
        fit = np.sort(np.concatenate([fit, val]))
    if args.limit:  # smoke runs only
        pick = np.random.default_rng(args.seed)
        fit, val = np.sort(pick.choice(fit, args.limit, replace=False)), np.sort(pick.choice(val, args.limit, replace=False))
    codes = {}
    for task, values in (("type", gallery.types), ("colour", gallery.colours), ("colour_type", gallery.labels)):
        codes[task], _ = class_codes(np.asarray(values))
    cache = Path(args.cache)
    views = ("plain", "flip") if (cache / f"block{args.from_block}_flip.npy").is_file() else ("plain",)
    maps = load_maps(cache, args.from_block, views)
    t0 = time.time()
    # only the fit rows are read into memory: held-out maps are never touched here
    x_fit = {v: torch.from_numpy(np.asarray(m[fit])) for v, m in maps.items()}
    log(f"loaded {len(fit)} x {len(views)} view(s) of block{args.from_block} maps in {time.time() - t0:.0f} s")
    model, _, _ = base_model()
    tail = Tail(model, args.from_block).to(memory_format=torch.channels_last)
    heads = Heads(1280, {k: int(c.max()) + 1 for k, c in codes.items()}, args.dropout)
    y = {k: torch.from_numpy(c[fit]) for k, c in codes.items()}
    y_val = {k: c[val] for k, c in codes.items()}
    y_fitnp = {k: c[fit] for k, c in codes.items()}
    desc = gallery.descriptors
    head_params = list(heads.parameters())
    opt = torch.optim.AdamW([
        {"params": tail.parameters(), "lr": args.lr},
        {"params": head_params, "lr": args.lr * args.head_lr_mult},
    ], weight_decay=args.weight_decay)
    steps_per_epoch = len(fit) // args.batch
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[args.lr, args.lr * args.head_lr_mult], total_steps=total, pct_start=0.15)
    weights = {"type": 1.0, "colour": 1.0, "colour_type": args.joint_weight}
    history = []
    val_maps = load_maps(cache, args.from_block, ("plain",))["plain"]
    if args.baseline_probe:
        z_f, z_v = embed_maps(tail, maps["plain"], fit), embed_maps(tail, val_maps, val)
        history.append({"epoch": 0, "probe_val_acc": probe_accuracy(z_f, z_v, y_fitnp, y_val, desc[fit], desc[val])})
        log(f"epoch 0 (ImageNet weights) probe val acc {history[-1]['probe_val_acc']}")
    step = 0
    for epoch in range(1, args.epochs + 1):
        tail.train(); heads.train()
        if args.freeze_bn:
            for m in tail.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        perm = torch.randperm(len(fit))
        flip = torch.rand(len(fit)) < 0.5
        t_ep, run_loss = time.time(), 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch:(s + 1) * args.batch]
            f = flip[idx]
            xb = x_fit["plain"][idx].float()
            if "flip" in x_fit:  # the cached mirrored photo
                xb = torch.where(f[:, None, None, None], x_fit["flip"][idx].float(), xb)
            else:  # mirror the feature map: close to mirroring the photo for a CNN trained with flips
                xb = torch.where(f[:, None, None, None], torch.flip(xb, dims=[3]), xb)
            out = heads(tail(xb.contiguous(memory_format=torch.channels_last)))
            loss = sum(weights[k] * F.cross_entropy(out[k], y[k][idx], label_smoothing=args.label_smoothing)
                       for k in out if weights[k] > 0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step(); sched.step(); step += 1
            run_loss += float(loss.detach())
            if (s + 1) % 25 == 0:
                log(f"epoch {epoch} step {s + 1}/{steps_per_epoch} loss {run_loss / (s + 1):.4f} "
                    f"({(time.time() - t_ep) / (s + 1):.2f} s/step)")
        rec: dict[str, Any] = {"epoch": epoch, "loss": run_loss / steps_per_epoch, "seconds": round(time.time() - t_ep, 1)}
        if len(val) and not args.final:
            tail.eval(); heads.eval()
            with torch.inference_mode():
                z_v = embed_maps(tail, val_maps, val)
                logits = heads(torch.from_numpy(z_v))
                rec["head_val_acc"] = {k: float((logits[k].argmax(1).numpy() == y_val[k]).mean()) for k in logits}
                pt, pc = logits["type"].argmax(1).numpy(), logits["colour"].argmax(1).numpy()
                rec["head_val_acc"]["type&colour"] = float(((pt == y_val["type"]) & (pc == y_val["colour"])).mean())
            if args.probe_every and epoch % args.probe_every == 0:
                z_f = embed_maps(tail, maps["plain"], fit)
                rec["probe_val_acc"] = probe_accuracy(z_f, z_v, y_fitnp, y_val, desc[fit], desc[val])
        history.append(rec)
        log(f"epoch {epoch}: {json.dumps(rec)}")
        save_tail(args.out, model, args, history, fit)
    log(f"trained in {time.time() - t0:.0f} s")


def save_tail(out: str, model: nn.Module, args: argparse.Namespace, history: list, fit: np.ndarray) -> None:
    """The whole backbone's state dict (timm keys, headless) with the adapted tail; a JSON card beside it."""
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("classifier.")}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    card = {k: v for k, v in vars(args).items() if k != "func"}
    card.update(history=history, fit_images=int(len(fit)), sha256=file_sha256(out))
    out.with_suffix(".json").write_text(json.dumps(card, indent=2))


def cmd_embed(args: argparse.Namespace) -> None:
    """A copy of the gallery whose embeddings come from the adapted tail over the cached (plain) maps."""
    torch.set_num_threads(args.threads)
    gallery = Gallery.load(args.gallery)
    card = json.loads(Path(args.weights).with_suffix(".json").read_text())
    model = adapted_model(args.weights)
    tail = Tail(model, card["from_block"]).to(memory_format=torch.channels_last)
    maps = load_maps(Path(args.cache), card["from_block"], ("plain",))["plain"]
    t0 = time.time()
    z = embed_maps(tail, maps, np.arange(len(gallery)))
    log(f"embedded {len(z)} images from cached maps in {time.time() - t0:.0f} s")
    ds = gallery.dataset.remove_columns(["embedding"])
    ds = ds.add_column("embedding", list(z.astype(np.float32)), feature=gallery.dataset.features["embedding"])
    spec = EmbeddingSpec.from_dict({
        **gallery.spec.to_dict(), "weights_source": f"file:{Path(args.weights).name}",
        "weights_sha256": file_sha256(args.weights),
        **({"model": args.name, "weights_source": args.source, "weights_sha256": args.sha256} if args.name else {}),
    })
    Gallery(ds, spec, gallery.colour_spec).save(args.out)
    log(f"wrote {args.out}")


def cmd_export(args: argparse.Namespace) -> None:
    """Only the adapted tensors (blocks[k:], conv_head, bn2) as safetensors: what the backbone registry ships."""
    from safetensors.torch import save_file

    card = json.loads(Path(args.weights).with_suffix(".json").read_text())
    state = torch.load(args.weights, map_location="cpu", weights_only=True)
    prefixes = tuple(f"blocks.{i}." for i in range(card["from_block"], 7)) + ("conv_head.", "bn2.")
    dtype = getattr(torch, args.dtype)  # float16 halves the file; the registry casts back to the model's float32
    delta = {k: v.to(dtype).contiguous() for k, v in state.items()
             if k.startswith(prefixes) and not k.endswith("num_batches_tracked")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_file(delta, args.out)
    print(json.dumps({"out": args.out, "tensors": len(delta), "params": sum(v.numel() for v in delta.values()),
                      "sha256": file_sha256(args.out)}))


def cmd_cc0(args: argparse.Namespace) -> None:
    """The second photo source (issue 9 item 5) for a gallery + classifiers, as benchmarks/ablation.py measures it."""
    from benchmarks.ablation import second_source, second_source_eval
    from cbir.similarity.classifiers import ClassifierSet
    from cbir.embed.colour import ColourSpec
    from cbir.embed.extractor import FeatureExtractor
    from cbir.index import EmbeddingIndex

    gallery = Gallery.load(args.gallery)
    cs = ClassifierSet.load(args.classifiers)
    extractor = FeatureExtractor(gallery.spec.model, weights="pretrained", device="cpu")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    cc0 = second_source(Path(args.cc0), extractor, gallery.colour_spec or ColourSpec(), cache)
    x, d = gallery.embeddings, gallery.descriptors
    report = {m: second_source_eval(m, cc0, x, EmbeddingIndex(x, d), cs, gallery.types.astype(str)) for m in args.methods}
    Path(args.out).write_text(json.dumps({"gallery": str(args.gallery), "backbone": gallery.spec.model, **report}, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def cmd_check(args: argparse.Namespace) -> None:
    """Embeddings in the new gallery vs the real adapted model on decoded images: max |diff|, min cosine."""
    gallery = Gallery.load(args.gallery)
    model = adapted_model(args.weights)
    card = json.loads(Path(args.weights).with_suffix(".json").read_text())
    _, transform, _ = base_model(card.get("crop_mode", "center"))
    rows = np.random.default_rng(0).choice(len(gallery), args.n, replace=False)
    with torch.inference_mode():
        x = torch.stack([transform(gallery.image(int(i))) for i in rows])
        real = model(x).numpy()
    stored = gallery.embeddings[rows]
    cos = (real * stored).sum(1) / np.linalg.norm(real, axis=1) / np.linalg.norm(stored, axis=1)
    res = {"n": int(args.n), "max_abs_diff": float(np.abs(real - stored).max()), "min_cosine": float(cos.min()),
           "mean_abs": float(np.abs(real).mean())}
    print(json.dumps(res))


def add_tail_args(p: argparse.ArgumentParser) -> None:
    """The options of a tail fine-tune shared with benchmarks/finetune_sources.py: where it starts, AdamW, dropout."""
    p.add_argument("--from-block", type=int, default=6, choices=CUT_BLOCKS)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--head-lr-mult", type=float, default=10.0)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--dropout", type=float, default=0.2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("--gallery", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--batch", type=int, default=32)
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--views", nargs="+", default=["plain"], choices=["plain", "flip", *CROP_VIEWS],
                   help="flip: also the mirrored photo (twice the time); without it, training flips the maps; "
                        "cropN: a seeded crop of 50-100 %% of the photo, maybe mirrored, light photometric change")
    c.add_argument("--blocks", nargs="+", type=int, default=list(CACHED_BLOCKS), choices=CUT_BLOCKS,
                   help="cache the inputs of these blocks (train --from-block needs its block's maps)")
    c.add_argument("--crop-mode", default="center", choices=CROP_MODES,
                   help="timm's eval crop: center cuts a portrait photo's top and bottom, border pads it")
    t = sub.add_parser("train")
    t.add_argument("--gallery", required=True)
    t.add_argument("--cache", required=True)
    t.add_argument("--out", required=True, help="weights file (.pth); a .json card is written beside it")
    t.add_argument("--epochs", type=int, default=4)
    add_tail_args(t)
    t.add_argument("--label-smoothing", type=float, default=0.1)
    t.add_argument("--joint-weight", type=float, default=1.0, help="weight of the 24-class colour_type head")
    t.add_argument("--freeze-bn", action="store_true")
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument("--final", action="store_true", help="train on all training images (no validation)")
    t.add_argument("--baseline-probe", action="store_true")
    t.add_argument("--probe-every", type=int, default=0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit", type=int, default=0, help="use only the first N fit/val images (smoke runs)")
    t.add_argument("--threads", type=int, default=2)
    e = sub.add_parser("embed")
    e.add_argument("--gallery", required=True)
    e.add_argument("--cache", required=True)
    e.add_argument("--weights", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--name", default="", help="the registered backbone to name in the spec (else the file)")
    e.add_argument("--source", default="", help="with --name: the registry's weights source string")
    e.add_argument("--sha256", default="", help="with --name: the registry's weights sha256")
    e.add_argument("--threads", type=int, default=2)
    k = sub.add_parser("check")
    k.add_argument("--gallery", required=True)
    k.add_argument("--weights", required=True)
    k.add_argument("--n", type=int, default=8)
    x = sub.add_parser("export")
    x.add_argument("--weights", required=True)
    x.add_argument("--out", required=True, help="a .safetensors file of the adapted tensors only")
    x.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    s = sub.add_parser("cc0")
    s.add_argument("--gallery", required=True)
    s.add_argument("--classifiers", required=True)
    s.add_argument("--cc0", default="../shared/data/clothing-cc0")
    s.add_argument("--cache", required=True, help="folder for the CC0 embeddings (per backbone)")
    s.add_argument("--methods", nargs="+", default=["cosine", "logreg", "attribute"])
    s.add_argument("--out", required=True)
    args = p.parse_args(argv)
    cmds = {"cache": cmd_cache, "train": cmd_train, "embed": cmd_embed, "check": cmd_check, "export": cmd_export,
            "cc0": cmd_cc0}
    cmds[args.cmd](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
