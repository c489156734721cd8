"""Adapt the last stages of EfficientNet-Lite2 on several photo sources at once (the demo's backbone).

The frozen stem..blocks[k-1] runs once per photo (ONNX Runtime, photo and mirror) and its output maps are cached
as float16; training then runs only blocks[k:] + conv_head + bn2 with two linear heads on the pooled embedding:
the demo's ten garment types (CC0 photos) and the six colours (Apparel and catalogue shots). An Apparel or
catalogue `shirt` may be any top, so its type loss is the log of the tops' summed probability (a partial label).
Only the training photos of cbir.train.splits are read, and with `validation` only their fit part.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cbir.embed.backbones import DEFAULT_MODEL, file_sha256
from cbir.train.photos import PhotoSet
from cbir.train.splits import TOPS, fit_validation_splits, source_splits
from cbir.train.tail import CROP_VIEWS, Tail, base_model, embed_maps, load_maps, training_view, trunk_session

TYPE_SOURCES = ("demo", "cc0", "more", "apparel", "catalogue")  # "more": clothing-cc0-more, optional
SHIRT_IS_ANY_TOP = ("apparel", "catalogue")  # their `shirt` folders hold T-shirts and long sleeves too
CC0_SOURCES = ("demo", "cc0", "more")  # share the CC0 part of a batch by size


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class TailOptions:
    """How the tail is trained: where it starts, steps, AdamW, dropout, each source's share of a batch."""

    from_block: int = 5
    steps: int = 600
    batch: int = 64
    lr: float = 3e-4
    head_lr_mult: float = 10.0
    weight_decay: float = 1e-4
    dropout: float = 0.2
    share: tuple[float, float, float] = (0.5, 0.3, 0.2)  # CC0 (demo + cc0-train + more), Apparel, catalogue
    validation: bool = True  # train on the fit part only; report the heads on the validation part
    seed: int = 0
    threads: int = 2


def cache_maps(photos: PhotoSet, out: str | Path, *, views: tuple[str, ...] = ("plain", "flip"),
               blocks: tuple[int, ...] = (5,), crop_mode: str = "border", batch: int = 32, threads: int = 2) -> Path:
    """Frozen maps (the inputs of `blocks`) of every photo, per view, as float16 .npy memmaps, and a cache.json."""
    torch.set_num_threads(threads)
    model, transform, cfg = base_model(crop_mode)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n, blocks = len(photos), tuple(sorted(blocks))
    session = trunk_session(model, cfg, out, threads, blocks)  # ~3.5x less CPU than torch here
    probe = session.run(None, {"x": np.zeros((1, *cfg["input_size"]), np.float32)})
    shapes = {b: tuple(t.shape[1:]) for b, t in zip(blocks, probe)}
    maps = {(b, v): np.lib.format.open_memmap(out / f"block{b}_{v}.npy", mode="w+", dtype=np.float16, shape=(n, *s))
            for b, s in shapes.items() for v in views}

    class Decode(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            photo = photos.image(i)
            return {v: transform(training_view(photo, v, i)) for v in views if v in CROP_VIEWS} | {
                "photo": transform(photo)}

    loader = torch.utils.data.DataLoader(Decode(), batch_size=batch, num_workers=1)
    t0, done = time.time(), 0
    for b in loader:
        x = b["photo"]
        for v in views:
            xv = torch.flip(x, dims=[3]) if v == "flip" else b.get(v, x)
            for blk, t in zip(blocks, session.run(None, {"x": xv.numpy()})):
                maps[(blk, v)][done:done + len(x)] = t.astype(np.float16)
        done += len(x)
        if done % (batch * 20) == 0 or done == n:
            log(f"cached {done}/{n} ({done / (time.time() - t0):.1f} img/s)")
    for m in maps.values():
        m.flush()
    (out / "cache.json").write_text(json.dumps({
        "n": n, "model": DEFAULT_MODEL, "views": list(views), "shapes": {str(b): list(s) for b, s in shapes.items()},
        "data_config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        "seconds": round(time.time() - t0, 1)}, indent=2))
    return out


class Heads(nn.Module):
    """Linear heads (type, colour) on the 1280-d embedding, dropout first."""

    def __init__(self, dim: int, sizes: dict[str, int], dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({f"head_{k}": nn.Linear(dim, n) for k, n in sizes.items()})  # "type" is taken

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.drop(z)
        return {k.removeprefix("head_"): h(z) for k, h in self.heads.items()}


def training_rows(sources: Mapping[str, Any], validation: bool, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(train, held) rows per source as cbir.train.splits cuts them; with `validation`, its fit/val cut. Every demo
    photo trains (the demo's own held-out photos are not in its set)."""
    others = {k: v for k, v in sources.items() if k != "demo"}
    splits = source_splits(others, seed)
    if validation:
        splits = fit_validation_splits(others, {k: train for k, (train, _) in splits.items()}, seed)
    return {"demo": (np.arange(len(sources["demo"])), np.zeros(0, int)), **splits}


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


def train_tail(sources: Mapping[str, PhotoSet], caches: Mapping[str, str | Path], out: str | Path,
               options: TailOptions = TailOptions()) -> dict[str, Any]:
    """Fine-tune the tail on every source's training rows (cached maps); save the headless state dict to `out`
    (.pth) with a .json card beside it. Rows without a demo type (clothing-cc0-more's other labels) are skipped."""
    o = options
    torch.set_num_threads(o.threads)
    torch.manual_seed(o.seed)
    t0 = time.time()
    rows = training_rows(sources, o.validation, o.seed)
    crop_modes = {json.loads((Path(caches[k]) / "cache.json").read_text())["data_config"].get("crop_mode", "center")
                  for k in sources}
    if len(crop_modes) != 1:
        raise ValueError(f"the caches were made with different crop modes {sorted(crop_modes)}: remake them alike")
    type_classes = sorted({str(t) for t in sources["demo"].types})
    colour_classes = sorted({str(c) for c in sources["apparel"].colours if c is not None})
    cc0 = [k for k in CC0_SOURCES if k in sources]
    sizes = {k: len(rows[k][0]) for k in cc0}
    share = {k: o.share[0] * sizes[k] / sum(sizes.values()) for k in cc0}
    share.update(apparel=o.share[1], catalogue=o.share[2])

    views = ("plain", "flip")
    bank, where, allowed, colour, weight, held = [], [], [], [], [], {}
    for src in (s for s in TYPE_SOURCES if s in sources):
        photos, (tr, va) = sources[src], rows[src]
        tr = tr[np.isin(photos.types[tr].astype(str), type_classes + (["shirt"] if src in SHIRT_IS_ANY_TOP else []))]
        va = va[np.isin(photos.types[va].astype(str), type_classes)]
        cache = Path(caches[src])
        maps = load_maps(cache, o.from_block, tuple(v for v in views if (cache / f"block{o.from_block}_{v}.npy").is_file()))
        where.append(view_table(sum(len(b) for b in bank), len(tr), list(maps), views))
        bank += [torch.from_numpy(np.asarray(m[tr])) for m in maps.values()]
        held[src] = (maps["plain"], va)
        types = photos.types[tr]
        allowed.append(type_targets(types, src, type_classes))
        cols = photos.colours[tr]
        colour.append(np.asarray([colour_classes.index(c) if c in colour_classes else -100 for c in cols]))
        _, inv, counts = np.unique(types.astype(str), return_inverse=True, return_counts=True)
        w = 1.0 / np.sqrt(counts[inv])  # rare types drawn more often (type P@1 is macro over types)
        weight.append(share[src] * w / w.sum())
        log(f"{src}: {len(tr)} training rows x {len(maps)} views, {len(va)} held")
    bank, where = torch.cat(bank), torch.from_numpy(np.concatenate(where))
    allowed_t, colour_t = torch.from_numpy(np.concatenate(allowed)), torch.from_numpy(np.concatenate(colour))
    draw = torch.from_numpy(np.concatenate(weight))

    model, _, _ = base_model()
    tail = Tail(model, o.from_block).to(memory_format=torch.channels_last)
    heads = Heads(1280, {"type": len(type_classes), "colour": len(colour_classes)}, o.dropout)
    opt = torch.optim.AdamW([{"params": tail.parameters(), "lr": o.lr},
                             {"params": heads.parameters(), "lr": o.lr * o.head_lr_mult}], weight_decay=o.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[o.lr, o.lr * o.head_lr_mult], total_steps=o.steps,
                                                pct_start=0.15)
    history, run_loss, reported = [], 0.0, 0
    gen = torch.Generator().manual_seed(o.seed)
    for step in range(1, o.steps + 1):
        tail.train(); heads.train()
        idx = torch.multinomial(draw, o.batch, replacement=True, generator=gen)
        view = torch.randint(2, (o.batch,), generator=gen)
        out_ = heads(tail(bank[where[idx, view]].float().contiguous(memory_format=torch.channels_last)))
        loss = partial_label_loss(out_["type"], allowed_t[idx])
        has_colour = colour_t[idx] >= 0
        if has_colour.any():
            loss = loss + F.cross_entropy(out_["colour"][has_colour], colour_t[idx][has_colour], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step(); sched.step()
        run_loss += float(loss.detach())
        if step % 50 == 0 or step == o.steps:
            rec: dict[str, Any] = {"step": step, "loss": run_loss / (step - reported), "seconds": round(time.time() - t0)}
            run_loss, reported = 0.0, step
            if o.validation and (step % 200 == 0 or step == o.steps):
                rec["validation"] = head_accuracy(tail, heads, sources, held, type_classes, colour_classes)
            history.append(rec)
            log(json.dumps(rec))
    card = {**asdict(o), "crop_mode": crop_modes.pop(), "sources": sorted(sources), "history": history,
            "training_rows": int(len(draw))}
    save_tail(out, model, card)
    return card


def save_tail(out: str | Path, model: nn.Module, card: dict[str, Any]) -> None:
    """The whole backbone's state dict (timm keys, headless) with the adapted tail; a JSON card beside it."""
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("classifier.")}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    out.with_suffix(".json").write_text(json.dumps({**card, "sha256": file_sha256(out)}, indent=2))


def head_accuracy(tail: Tail, heads: nn.Module, sources: Mapping[str, PhotoSet], held: dict, type_classes: list[str],
                  colour_classes: list[str]) -> dict[str, float]:
    """The heads' accuracy on the held rows: CC0 type (macro over types), tops counted as any top elsewhere; colour."""
    heads.eval()
    res = {}
    for src, (maps, rows) in held.items():
        if not len(rows):
            continue
        with torch.inference_mode():
            out = heads(torch.from_numpy(embed_maps(tail, maps, rows)))
        photos = sources[src]
        ok = type_targets(photos.types[rows], src, type_classes)[np.arange(len(rows)), out["type"].argmax(1).numpy()]
        types = photos.types[rows].astype(str)
        res[f"{src} type macro"] = round(float(np.mean([ok[types == t].mean() for t in set(types)])), 4)
        cols = photos.colours[rows]
        if src in SHIRT_IS_ANY_TOP:
            pred = np.asarray(colour_classes)[out["colour"].argmax(1).numpy()]
            res[f"{src} colour"] = round(float((pred == cols.astype(str)).mean()), 4)
    return res


def export_tail(weights: str | Path, out: str | Path, dtype: str = "float16") -> dict[str, Any]:
    """Only the adapted tensors (blocks[k:], conv_head, bn2) as safetensors: what the backbone registry ships."""
    from safetensors.torch import save_file

    card = json.loads(Path(weights).with_suffix(".json").read_text())
    state = torch.load(weights, map_location="cpu", weights_only=True)
    prefixes = tuple(f"blocks.{i}." for i in range(card["from_block"], 7)) + ("conv_head.", "bn2.")
    cast = getattr(torch, dtype)  # float16 halves the file; the registry casts back to the model's float32
    delta = {k: v.to(cast).contiguous() for k, v in state.items()
             if k.startswith(prefixes) and not k.endswith("num_batches_tracked")}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_file(delta, str(out))
    return {"out": str(out), "tensors": len(delta), "params": sum(v.numel() for v in delta.values()),
            "sha256": file_sha256(out), "crop_mode": card.get("crop_mode", "center")}
