"""The one answer shape of a search (/search, /search_batch, /search_text and SearchEngine.answer): JSON-able."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from cbir.search.options import SearchOptions
from cbir.similarity.registry import get_method


def answer_json(
    hits: Sequence[Any],
    options: SearchOptions,
    *,
    exclude: int = -1,
    query: Optional[dict] = None,
    positives: Optional[Sequence[int]] = None,
    negatives: Optional[Sequence[int]] = None,
    box: Optional[list[float]] = None,
    **extra: Any,
) -> dict[str, Any]:
    """{method, method_label, task, k, excluded_index, filters, dedup, positives, negatives, box, min_score, query,
    results: [hit.to_dict()]} for one query's hits under resolved `options` (`extra`: keys an endpoint adds)."""
    return {
        "method": options.method,
        "method_label": get_method(options.method).label,
        "task": options.task,
        "k": options.k,
        "excluded_index": int(exclude),
        "filters": dict(options.filters),
        "dedup": options.dedup,
        "positives": [int(i) for i in positives or []],
        "negatives": [int(i) for i in negatives or []],
        "box": box,
        "min_score": options.min_score,
        "query": query or {},
        "results": [h.to_dict() for h in hits],
        **extra,
    }
