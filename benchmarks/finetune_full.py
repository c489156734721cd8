#!/usr/bin/env python
"""Issue 18: fine-tune every layer of EfficientNet-Lite2 on the CC0 garment types, with a fresh augmentation of
each photo in every epoch (validation only: does the CC0 type figure move?).

The adapted backbones (finetune_sources.py) train their last stages on cached maps of a few fixed views; this run
trains the whole network on a new random crop (35-100 % of the area), flip and brightness/contrast change (15 %)
per photo and epoch, on the demo's 580 photos and the fit part of clothing-cc0-train (benchmarks/sources.py's
split), and scores benchmarks/sources.py's type model on its embeddings against those of the starting weights,
on the validation part (never the test photos):

    python benchmarks/finetune_full.py --cc0-train /tmp/src/cc0-train --out /tmp/full.pth \
        --report results/finetune-full.json --flip
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.finetune_model import TRAIN_PHOTOMETRIC, adapted_model, base_model  # noqa: E402
from cbir.embed.backbones import create_model  # noqa: E402
from cbir.embed.preprocess import BorderTransform  # noqa: E402
from benchmarks.sources import (  # noqa: E402
    TEST_FRACTIONS, VALIDATION_FRACTION, Part, class_accuracy, fit, split, type_precision,
)
from cbir.gallery.dataset import Gallery  # noqa: E402

TRAIN_SIDE = 300  # the whole-photo square the training crops are cut from


def framed(image: Any, cfg: dict[str, Any], side: int = TRAIN_SIDE) -> torch.Tensor:
    """(3, side, side) uint8: the whole photo as the `border` crop mode frames it (cbir.embed.preprocess), at `side`."""
    view = BorderTransform({**cfg, "input_size": (3, side, side)}).view(image)
    return torch.from_numpy(np.array(view)).permute(2, 0, 1)


def augmenter(size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A random crop of 35-100 % of the area resized to `size`, a flip half the time, brightness/contrast within
    TRAIN_PHOTOMETRIC (15 %, as the cached views; no hue change: the backbone also serves colour)."""
    import torchvision.transforms.v2 as T

    return T.Compose([T.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True), T.RandomHorizontalFlip(),
                      T.ColorJitter(brightness=TRAIN_PHOTOMETRIC, contrast=TRAIN_PHOTOMETRIC)])


def train(model: nn.Module, photos: torch.Tensor, labels: torch.Tensor, n_classes: int, epochs: int, size: int,
          lr: float, batch: int = 24, seed: int = 0,
          on_epoch: Optional[Callable[[int, float], None]] = None) -> nn.Linear:
    """Train `model` (all layers) and a linear head with label-smoothed cross-entropy, one-cycle schedule (the head
    at 10x `lr`); `photos` are uint8 squares, normalised with mean = std = 0.5 as the backbone expects."""
    torch.manual_seed(seed)
    aug, head = augmenter(size), nn.Linear(model.num_features, n_classes)
    opt = torch.optim.AdamW([{"params": model.parameters(), "lr": lr}, {"params": head.parameters(), "lr": lr * 10}],
                            weight_decay=0.05)
    per_epoch = max(1, len(photos) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[lr, lr * 10], total_steps=epochs * per_epoch, pct_start=0.1)
    for epoch in range(epochs):
        model.train(), head.train()
        order, total = torch.randperm(len(photos)), 0.0
        for s in range(per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            x = torch.stack([aug(photos[i]) for i in idx]).float().div(255).sub(0.5).div(0.5)
            loss = F.cross_entropy(head(model(x)), labels[idx], label_smoothing=0.1)
            opt.zero_grad(), loss.backward(), opt.step(), sched.step()
            total += loss.item()
        if on_epoch:
            on_epoch(epoch, total / per_epoch)
    return head.eval()


def embed(model: nn.Module, transform: Any, images: Sequence[Any], flip: bool = False, batch: int = 32) -> np.ndarray:
    """(N, D) embeddings of PIL photos through timm's eval `transform`; with `flip`, the mean with the mirror's."""
    model.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            x = torch.stack([transform(im.convert("RGB")) for im in images[s:s + batch]])
            z = model(x)
            out.append(((z + model(x.flip(3))) / 2 if flip else z).numpy())
    return np.concatenate(out)


def cc0_validation(demo: Gallery, ctr: Gallery, seed: int) -> tuple[dict[str, Part], dict[str, list[Any]]]:
    """The demo, the fit and the validation part of clothing-cc0-train (benchmarks/sources.py's split, the test
    photos left out) as Parts and as PIL photos, keyed "demo", "fit", "val"."""
    train_rows, _ = split(ctr, TEST_FRACTIONS["cc0"], seed)
    fit_rows, val_rows = split(ctr, VALIDATION_FRACTION, seed, train_rows)
    parts = {"demo": Part.of("demo", demo, np.arange(len(demo))), "fit": Part.of("fit", ctr, fit_rows),
             "val": Part.of("validation", ctr, val_rows)}
    images = {"demo": [demo.image(i) for i in range(len(demo))], "fit": [ctr.image(int(i)) for i in fit_rows],
              "val": [ctr.image(int(i)) for i in val_rows]}
    return parts, images


def type_figures(demo: Part, fit_part: Part, val: Part, spec: Any, colour_spec: dict) -> dict[str, Any]:
    """benchmarks/sources.py's CC0 type model (demo + fit photos) on validation photos: its accuracy, and P@K of the
    attribute method against the demo gallery, macro over types."""
    clf = fit("type", [demo, fit_part], spec, colour_spec)
    acc = class_accuracy(clf, val, "type")
    scores = clf.image_vectors(val.x, val.d) @ clf.image_vectors(demo.x, demo.d).T
    p = type_precision(scores, demo.types, val.types)
    return {"accuracy macro": acc["macro"], "accuracy": acc["accuracy"], "accuracy per type": acc["per type"],
            **{k: p[k] for k in ("P@1", "P@5", "P@1 micro")}}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", default="demo/gallery")
    p.add_argument("--cc0-train", required=True, help="gallery of clothing-cc0-train (build_index.py)")
    p.add_argument("--init", default="tf_efficientnet_lite2_clothing_v2",
                   help="starting weights: a registered backbone of this architecture, or a state dict (.pth)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--size", type=int, default=224, help="training crop side (the embedding stays at 260)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--flip", action="store_true", help="also score embeddings averaged with the mirrored photo's")
    p.add_argument("--seed", type=int, default=0, help="the photos' split seed (benchmarks/sources.py's --seed)")
    p.add_argument("--train-seed", type=int, default=0, help="the training order and augmentations")
    p.add_argument("--out", required=True, help="the fine-tuned state dict (.pth)")
    p.add_argument("--report", required=True, help="JSON of the history and the validation figures")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error("--epochs must be at least 1")
    t0 = time.time()
    torch.set_num_threads(2)
    demo, ctr = Gallery.load(args.demo), Gallery.load(args.cc0_train)
    parts, images = cc0_validation(demo, ctr, args.seed)
    classes = sorted(set(demo.types))
    labels = torch.tensor([classes.index(t) for t in np.concatenate([parts["demo"].types, parts["fit"].types])])
    _, transform, cfg = base_model("border")
    photos = torch.stack([framed(im, cfg) for im in images["demo"] + images["fit"]])
    init = (lambda: adapted_model(args.init)) if args.init.endswith(".pth") else (lambda: create_model(args.init)[0].eval())
    colour_spec = demo.colour_spec.to_dict()

    def figures(model: nn.Module) -> dict[str, Any]:
        out = {}
        for flip in (False, True) if args.flip else (False,):
            z = {k: embed(model, transform, ims, flip) for k, ims in images.items()}
            key = "flip" if flip else "photo"
            out[key] = type_figures(*(replace(parts[k], x=z[k]) for k in ("demo", "fit", "val")), demo.spec, colour_spec)
            print(f"  {key}: {json.dumps({k: v for k, v in out[key].items() if 'per' not in k})}", flush=True)
        return out

    print(f"{len(photos)} training photos, {len(parts['val'])} validation photos; starting weights {args.init}:", flush=True)
    before = figures(init())
    model, history = init(), []

    def on_epoch(epoch: int, loss: float) -> None:
        history.append({"epoch": epoch, "loss": round(loss, 4), "seconds": round(time.time() - t0)})
        print(f"epoch {epoch} loss {loss:.3f} ({history[-1]['seconds']} s)", flush=True)

    train(model, photos, labels, len(classes), args.epochs, args.size, args.lr, seed=args.train_seed, on_epoch=on_epoch)
    torch.save(model.state_dict(), args.out)
    print("fine-tuned:", flush=True)
    after = figures(model)
    report = {"command": "python benchmarks/finetune_full.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "seconds": round(time.time() - t0), "training photos": len(photos), "validation photos": len(parts["val"]),
              "history": history, "starting weights": before, "fine-tuned": after}
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
