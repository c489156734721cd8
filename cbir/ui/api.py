"""The public API: the gr.api endpoints /search, /search_batch, /search_text, /random, /compare, /explain, /add
and /remove.

They are typed by their signatures (gradio_client's view_api shows them); each is a thin call into `Handlers`.
"""

# no `from __future__ import annotations`: gr.api reads the (closure-local) Literal types at run time

from pathlib import Path
from typing import Callable, Literal, Optional

import gradio as gr
from gradio.data_classes import FileData

from cbir.similarity.registry import TASK_CHOICES, get_method
from cbir.ui.errors import decode
from cbir.ui.handlers import K_DEFAULT, Handlers

ENGINE_CONCURRENCY = "engine"  # every event that runs the model shares one concurrency group
# endpoint name -> the names of its return values (gr.api calls them 1st, 2nd, ... in view_api)
OUTPUT_NAMES = {
    "search": ["results"], "search_batch": ["answers"], "search_text": ["results"], "random": ["image", "label", "index"], "compare": ["score"],
    "explain": ["query_overlay", "result_overlay", "score"], "add": ["indices"], "remove": ["count"],
}


def _file(path: str) -> FileData:
    return FileData(path=path, orig_name=Path(path).name)


def _search_endpoints(h: Handlers, MethodArg: type, TaskArg: type, default_method: str) -> dict[str, Callable]:
    def search(
        image: FileData,
        method: MethodArg = default_method,
        task: TaskArg = "type",
        k: int = K_DEFAULT,
        exclude: int = -1,
        types: Optional[list[str]] = None,
        colours: Optional[list[str]] = None,
        positives: Optional[list[int]] = None,
        negatives: Optional[list[int]] = None,
        box: Optional[list[float]] = None,
        dedup: bool = True,
        text: str = "",
        min_score: Optional[float] = None,
    ) -> dict:
        """The k gallery images most similar to an image, best first; `text` nudges the query (CLIP/SigLIP galleries).

        Returns {method, method_label, task, k, excluded_index, filters, dedup, positives, negatives, box,
        min_score, query: {type, colour: {value, probability, probabilities}}, results: [{rank, index, id, score, label,
        colour, type, copies}]} (`id`: the item's stable id; `query`: the photo's predicted attributes); `min_score` leaves out results
        scoring below it (none = keep all k).

        Args:
            image: the query photo (gradio_client.handle_file(path or URL))
            method: a method name or its label, e.g. "cosine" or "Cosine similarity" (default: the app's default)
            task: type, colour or both: what the learned methods (logreg, forest) judge; ignored by the others
            k: number of results
            exclude: a gallery index to leave out (the index /random returned), or -1
            types: only these garment types (empty = all)
            colours: only these colours (empty = all)
            positives: gallery indices marked "more like this" (relevance feedback)
            negatives: gallery indices marked "less like this"
            box: [x0, y0, x1, y1] in query pixels: search only that part of the image (none = whole image)
            dedup: show identical and near-identical results once, with their number of copies
            text: optional words, e.g. "but in red": the query is unit(image) + unit(text) (cbir.search.text.TEXT_WEIGHT)
            min_score: leave out results scoring below this (on the method's scale; none = keep all k)
        """
        options = h.options(method, task, k, types, colours, dedup, min_score, exclude)
        _, result, _ = h.search(decode(image), options, box=box, positives=positives, negatives=negatives, text=text)
        return result

    def search_batch(
        images: list[FileData],
        method: MethodArg = default_method,
        task: TaskArg = "type",
        k: int = K_DEFAULT,
        exclude: Optional[list[int]] = None,
        types: Optional[list[str]] = None,
        colours: Optional[list[str]] = None,
        positives: Optional[list[int]] = None,
        negatives: Optional[list[int]] = None,
        boxes: Optional[list[list[float]]] = None,
        dedup: bool = True,
        text: str = "",
        min_score: Optional[float] = None,
    ) -> list[dict]:
        """Several photos in one call: one /search answer per photo, in order (1 to 16 photos; one upload round).

        Options as /search (`exclude` and `boxes`: one per photo, or none; `min_score` leaves out results scoring
        below it); a photo that cannot be used fails the call with a message naming it ("photo 2: ...").

        Args:
            images: the query photos, a list of gradio_client.handle_file(...)
            method: a method name or its label, e.g. "cosine" or "Cosine similarity" (default: the app's default)
            task: type, colour or both: what the learned methods (logreg, forest) judge; ignored by the others
            k: number of results per photo
            exclude: one gallery index per photo to leave out (-1 = none), or empty
            types: only these garment types (empty = all)
            colours: only these colours (empty = all)
            positives: gallery indices marked "more like this", for every photo
            negatives: gallery indices marked "less like this", for every photo
            boxes: one [x0, y0, x1, y1] crop box per photo ([] = the whole photo), or empty
            dedup: show identical and near-identical results once, with their number of copies
            text: optional words nudging every photo's query, e.g. "but in red"
            min_score: leave out results scoring below this (on the method's scale; none = keep all k)
        """
        options = h.options(method, task, k, types, colours, dedup, min_score, exclude or [])
        return h.search_batch(images, options, boxes=boxes, positives=positives, negatives=negatives, text=text)

    def search_text(
        text: str,
        k: int = K_DEFAULT,
        types: Optional[list[str]] = None,
        colours: Optional[list[str]] = None,
        dedup: bool = True,
        min_score: Optional[float] = None,
    ) -> dict:
        """Search by words, e.g. "red summer dress" (CLIP/SigLIP galleries) or "black sneakers" (any gallery with attribute models).

        Returns /search's shape plus the normalised `text`: method "cosine" against the text embedding on a CLIP or
        SigLIP gallery; elsewhere method "attribute", ranked by the probabilities of the type and colour the words
        name, plus `words` ({"type": "shoes", "colour": "black"}); an unknown word is refused with the words it
        knows. `min_score` leaves out results scoring below it (none = keep all k).

        Args:
            text: a description of the garment
            k: number of results
            types: only these garment types (empty = all)
            colours: only these colours (empty = all)
            dedup: show identical and near-identical results once, with their number of copies
            min_score: leave out results scoring below this (cosine -1 to 1, or a probability; none = keep all k)
        """
        return h.search_text(text, h.options(None, "type", k, types, colours, dedup, min_score))[1]

    return {"search": search, "search_batch": search_batch, "search_text": search_text}


def _image_endpoints(h: Handlers, MethodArg: type, TaskArg: type, default_method: str) -> dict[str, Callable]:
    def random_image() -> tuple[FileData, str, int]:
        """A random gallery image: (image file, label, gallery index); pass the index to /search as `exclude`."""
        i = h.pick()
        return _file(h.image_file(i)), str(h.engine.gallery.labels[i]), i

    def compare(
        image_a: FileData, image_b: FileData, method: MethodArg = default_method, task: TaskArg = "type"
    ) -> float:
        """The similarity score of two images under one method (higher = more similar).

        Args:
            image_a: first image (handle_file)
            image_b: second image (handle_file)
            method: a method name or its label
            task: type, colour or both (learned methods only)
        """
        return h.compare(image_a, image_b, method, task)

    def explain(
        image: FileData, index: int, method: MethodArg = default_method, task: TaskArg = "type",
        box: Optional[list[float]] = None,
    ) -> tuple[FileData, FileData, float]:
        """Why did this match: similarity heat-maps of the query and gallery image `index`, and their score.

        Args:
            image: the query photo (handle_file)
            index: a gallery index (a result's `index`)
            method: the method whose score is returned
            task: type, colour or both (learned methods only)
            box: the crop box the search used, if any
        """
        qa, qb, score = h.explain(decode(image), index, method, task, box)
        return _file(qa), _file(qb), score

    return {"random": random_image, "compare": compare, "explain": explain}


def _admin_endpoints(h: Handlers) -> dict[str, Callable]:
    def add(images: list[FileData], labels: Optional[list[str]] = None, token: str = "",
            metadata: Optional[list[dict]] = None) -> list[int]:
        """Add images to the gallery (needs the admin token, CBIR_ADMIN_TOKEN); returns their new indices.

        Args:
            images: one or more image files (handle_file)
            labels: one label for all, or one per image: "colour_type" or a type; empty = unlabelled
            token: the value of CBIR_ADMIN_TOKEN on the server
            metadata: one object for all, or one per image: the item's catalogue columns (title, price, ...)
        """
        return h.add(images, labels, token, metadata)

    def remove(indices: list[int | str], token: str = "") -> int:
        """Remove gallery images by index or stable id (later images move up; needs CBIR_ADMIN_TOKEN); returns how many.

        Args:
            indices: gallery indices (a result's `index`, or "#17") or ids (a result's `id`)
            token: the value of CBIR_ADMIN_TOKEN on the server
        """
        return h.remove(indices, token)

    return {"add": add, "remove": remove}


def register_api(h: Handlers) -> list[tuple[dict, list[str]]]:
    """Add the public endpoints to the open Blocks; `method` defaults to the engine's default. Returns
    (dependency, output names) for `name_outputs`."""
    accepted = tuple(h.methods) + tuple(get_method(m).label for m in h.methods)
    MethodArg = Literal[accepted]  # type: ignore[valid-type]  # names and labels, shown by view_api
    TaskArg = Literal[TASK_CHOICES]  # type: ignore[valid-type]
    default = h.engine.default_method()
    fns = (_search_endpoints(h, MethodArg, TaskArg, default) | _image_endpoints(h, MethodArg, TaskArg, default)
           | _admin_endpoints(h))
    deps = []
    for name, fn in fns.items():
        model = {} if name == "random" else {"concurrency_id": ENGINE_CONCURRENCY}
        deps.append((gr.api(fn, api_name=name, **model), OUTPUT_NAMES[name]))
    return deps


def name_outputs(demo: gr.Blocks, deps: list[tuple[dict, list[str]]]) -> None:
    """Name the endpoints' return values in view_api (gr.api calls them 1st, 2nd, ...); after the Blocks closed."""
    for dep, names in deps:
        for block_id, label in zip(dep["outputs"], names):
            demo.blocks[block_id].label = label
