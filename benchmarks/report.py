"""The benchmark report as markdown: command and machine, then one titled section per benchmark."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

def fmt(x: Any, digits: int = 2) -> str:
    """A number for a table: thousands separators, fixed digits, n/a for None/NaN."""
    if x is None:
        return "n/a"
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return f"{x:,}"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if v != v:
        return "n/a"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}f}"


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """Markdown table lines."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _md_header(report: dict[str, Any]) -> list[str]:
    meta, mach = report["meta"], report["machine"]
    blas = ", ".join(
        f"{d.get('internal_api')} {d.get('version')} ({d.get('num_threads')} threads)"
        for d in mach.get("numpy_blas", [])
    )
    lines = [
        "# apparel-cbir benchmark",
        "",
        f"- Command: `{meta.get('command', '')}`",
        f"- Started {meta['started_utc']} UTC, took {fmt(meta.get('duration_s'), 0)} s, "
        f"peak RSS {fmt(meta.get('peak_rss_mb'), 0)} MB",
        f"- Machine: {mach.get('cpu_model', '?')}, {mach.get('usable_cores')} usable cores, "
        f"{mach.get('ram_gib', '?')} GiB RAM; 1-min load average {mach.get('loadavg_1m_at_start')} at start, "
        f"{mach.get('loadavg_1m_at_end')} at end",
        f"- numpy {mach['numpy']} with BLAS {blas or 'unknown'}; torch {mach.get('torch')} "
        f"({mach.get('torch_threads')} threads); scikit-learn {mach.get('sklearn')}; faiss {mach.get('faiss')}; "
        f"Python {mach['python']}",
    ]
    if "real_gallery" in meta:
        rg = meta["real_gallery"]
        lines.append(f"- Real gallery: {rg['n']:,} x {rg['dim']} ({rg['backbone']})")
    secs = meta.get("sections", {})
    if secs:
        parts = [
            f"{name} {fmt(v['wall_s'], 0)} s"
            + ("" if v.get("other_share") is None else f" ({100 * v['other_share']:.0f}% of the cores)")
            for name, v in secs.items()
        ]
        lines.append(
            "- Sections, with the CPU other processes used meanwhile (a clean timing shows ~0%): " + "; ".join(parts)
        )
    lines += [f"- Note: {note}" for note in meta.get("notes", [])]
    return lines


def _md_latency(report: dict[str, Any]) -> list[str]:
    lat = report.get("latency", {})
    rows = lat.get("rows", [])
    lines = [f"## Query latency: one query, whole gallery scored + top-{lat.get('k', 10)} (embedding excluded)", ""]
    headers = [
        "Gallery",
        "Data",
        "Method",
        "Median ms",
        "p95 ms",
        "ns/vector",
        "Gallery read GB/s",
        "Repeats",
        "Naive loop ms",
        "Naive timed on",
        "Speed-up",
        "Max score diff",
    ]
    lines += md_table(
        headers,
        (
            [
                r["gallery"],
                r["data"],
                r["method"],
                fmt(r["median_ms"]),
                fmt(r["p95_ms"]),
                fmt(r["median_ms"] * 1e6 / r["n"], 1),
                fmt(r.get("gallery_read_gbps"), 1),
                r["repeats"],
                fmt(r["naive_ms"], 0),
                f"{r['naive_items_timed']:,} items" + (" (extrapolated)" if r["naive_extrapolated"] else " (all)"),
                f"{fmt(r['speedup'], 0)}x",
                f"{r['naive_max_abs_diff']:.1e}",
            ]
            for r in rows
        ),
    )
    classifier_notes = sorted({f"{r['gallery']} {r['method']}: {r['classifier']}" for r in rows if r.get("classifier")})
    lines += [
        "",
        "Naive loop = a Python loop calling the method's pair scorer on one gallery item at a time (plus a heap "
        "top-k); when it would exceed its time budget it is timed on the first items and extrapolated linearly. "
        "Max score diff = largest |naive - vectorised| score over the items the loop scored. Gallery read GB/s = "
        "the (N, dim) float32 matrix a query streams through (the vectors themselves for every method) "
        "divided by the median time: scoring is memory-bandwidth bound. Learned methods use "
        "the classifier of task `type`" + (": " + "; ".join(classifier_notes) if classifier_notes else "") + ".",
    ]
    return lines


def _md_targets(report: dict[str, Any]) -> list[str]:
    def row(t: dict[str, Any]) -> list[str]:
        digits = {"ms": 2, "x": 1}.get(t["unit"], 3)
        unit = f" {t['unit']}" if t["unit"] else ""
        return [t["check"], fmt(t["value"], digits) + unit, t["target"], "yes" if t["met"] else "**NO**"]

    return ["## Targets", ""] + md_table(["Check", "Measured", "Target", "Met"], map(row, report.get("targets", [])))


def _md_ann(report: dict[str, Any]) -> list[str]:
    ann = report.get("ann", {})
    lines = ["## Approximate search: FAISS HNSW vs exact numpy", ""]
    if "skipped" in ann:
        return lines + [f"Skipped: {ann['skipped']}"]
    headers = [
        "Index",
        "Metric",
        "Effective dim",
        "Build s",
        "efSearch",
        "Recall@10",
        "Median ms",
        "p95 ms",
        "Exact median ms",
        "Speed-up",
        "HNSW MB",
        "Exact index MB",
    ]
    rows = []
    for run in ann.get("runs", []):
        if "skipped" in run:
            rows.append([run["label"], "", f"skipped: {run['skipped']}"] + [""] * 9)
            continue
        for i, r in enumerate(run["rows"]):
            first = i == 0
            rows.append(
                [
                    f"{run['label']} (M={run['m']}, efConstruction={run['ef_construction']})" if first else "",
                    run["metric"] if first else "",
                    fmt(run.get("effective_dim"), 0) if first else "",
                    fmt(run["build_s"], 1) if first else "",
                    r["ef_search"],
                    f"{r['recall']:.3f}",
                    fmt(r["median_ms"], 3),
                    fmt(r["p95_ms"], 3),
                    fmt(run["exact"]["median_ms"]) if first else "",
                    f"{fmt(r['speedup'], 0)}x",
                    fmt(run["ann_index_mb"], 0) if first else "",
                    fmt(run["exact_index_mb"], 0) if first else "",
                ]
            )
    queries = dict.fromkeys(
        f"{run['queries']} queries ({run.get('queries_note', '')})" for run in ann.get("runs", []) if "queries" in run
    )
    return (
        lines
        + md_table(headers, rows)
        + [
            "",
            "Recall@10 = share of the exact top-10 (numpy, same metric) that the index returns, over "
            + "; ".join(queries)
            + ". Latency is one query at a time; speed-up is against exact numpy on the same vectors. Effective dim "
            "= participation ratio of the covariance spectrum: the higher, the harder for any approximate index. "
            "Isotropic Gaussian data is the worst case (no structure: all distances look alike); the clustered "
            "data has a decaying spectrum; whitening flattens the real gallery's (see the scale-options section).",
        ]
    )


def _md_memory(report: dict[str, Any]) -> list[str]:
    headers = [
        "Gallery",
        "Data",
        "Vectors MB (float32)",
        "EmbeddingIndex.nbytes MB",
        "Index, shared arrays once MB",
        "Same vectors as float16 MB",
        "Process RSS MB",
        "RSS growth while querying MB",
    ]
    rows = (
        [
            r["gallery"],
            r["data"],
            fmt(r["vectors_mb"], 1),
            fmt(r["index_nbytes_mb"], 1),
            fmt(r.get("index_unique_mb"), 1),
            fmt(r["float16_vectors_mb"], 1),
            fmt(r["rss_mb"], 0),
            fmt(r["rss_growth_mb"], 0),
        ]
        for r in report.get("memory", {}).get("rows", [])
    )
    return (
        ["## Memory", ""]
        + md_table(headers, rows)
        + [
            "",
            "EmbeddingIndex.nbytes counts the vectors plus the arrays derived once and cached (norms, classifier "
            "projections) after every method ran; the next column counts arrays that share memory once (a cache "
            "that is a view of the gallery). RSS growth = process RSS after minus before indexing and querying that "
            "gallery (its vectors were already in memory): what the caches and query temporaries kept.",
        ]
    )


def _md_embedding(report: dict[str, Any]) -> list[str]:
    emb = report.get("embedding", {})
    lines = [f"## Embedding throughput on CPU ({emb.get('model', '')}; {emb.get('images', '')})", ""]
    rows = (
        [r["batch_size"], r["workers"], r["images"], fmt(r["seconds"], 1), fmt(r["images_per_s"], 2)]
        for r in emb.get("rows", [])
    )
    lines += md_table(["Batch size", "DataLoader workers", "Images", "Seconds", "Images/s"], rows)
    e2e = report.get("end_to_end")
    if e2e:
        lines += [
            "",
            f"## End to end: one uploaded image -> top-{e2e['k']} ({e2e['method']}, {e2e['gallery_n']:,} x "
            f"{e2e['dim']} {e2e.get('gallery', '')}; median upload {e2e['upload_kb_median']:.0f} KB)",
            "",
        ]
        rows = ([s, fmt(st["median_ms"]), fmt(st["p95_ms"]), st["repeats"]] for s, st in e2e["stages"].items())
        lines += md_table(["Stage", "Median ms", "p95 ms", "Repeats"], rows)
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The report as one markdown document: command and machine, then one titled section per benchmark."""
    sections = (_md_header, _md_latency, _md_targets, _md_ann, _md_memory, _md_embedding)
    return "\n\n".join("\n".join(part(report)) for part in sections) + "\n"
