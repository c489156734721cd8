"""The Blocks layout: header, Search tab (query column, results column), Compare tab and Manage tab.

`build_layout` only creates components; `cbir.ui.events` wires them to the handlers.
"""

from __future__ import annotations

import html
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import gradio as gr

from cbir.search.engine import SearchEngine
from cbir.core.filters import available_values
from cbir.ui.plots import QUERY, RESULT
from cbir.similarity.registry import TASK_CHOICES, get_method
from cbir.ui.handlers import K_DEFAULT, K_MAX_UI, MAX_ALTERNATIVES, NO_MARKS, marks_text

SOURCES = ["upload", "webcam", "clipboard"]
EXAMPLES = [Path(__file__).resolve().parents[2] / "demo" / "examples" / f for f in ("dress.jpg", "shoes.jpg", "tshirt.jpg")]
# One typeface for the whole page: Gradio's bundled Source Sans Pro SemiBold (600) is a 5 KB subset lacking most
# glyphs, so bold text mixed it with the fallback (the title's "A" in one face, the rest in another); its Regular
# and Bold files are whole, so the theme loads 400 and 700 (600 is drawn from 700), then the system sans-serif.
FONT = [gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"]
# ten type colours (the demo has ten types; nine made dress and tshirt one blue), none black or red (query, results)
PALETTE = ["#4e79a7", "#59a14f", "#edc948", "#b07aa1", "#76b7b2", "#9c755f", "#bab0ac", "#f28e2b", "#ff9da7", "#79706e"]
# Toasts at the bottom, off the results grid. The plots' blocks grow to hold their legend and caption (at the
# plot's own height they clipped them). On a phone the columns stack: the photo, the examples and Search first,
# then the results, then the options (they would push the results a screen down); two thumbnails a row, so
# labels and scores stay readable. The guess line's alternatives are small inline buttons.
CSS = """
.toast-wrap { top: auto !important; bottom: var(--size-4) !important; }
#gallery-map, #score-histogram { height: auto !important; }
#gallery-map .vega-embed { height: 400px !important; }
#score-histogram .vega-embed { height: 340px !important; }
#guess-row { align-items: center; gap: 6px; flex-wrap: wrap; }
#guess-row > * { flex: 0 0 auto !important; min-width: 0 !important; width: auto !important; }
@media (max-width: 640px) {
  #query-column { display: contents; }
  #query-column > * { order: 2; flex: 1 1 100%; min-width: 100%; }
  #query-column > #query-image, #query-column > #query-words, #query-column > #examples,
  #query-column > #query-buttons, #query-column > #query-info { order: 0; }
  #results-column { order: 1; flex: 1 1 100%; min-width: 100%; }
  #results-gallery .grid-wrap .grid-container { grid-template-columns: repeat(2, minmax(0, 1fr)) !important; }
}
"""


def theme() -> gr.themes.Base:
    """Gradio's default theme with whole font files (see FONT)."""
    return gr.themes.Default(font=FONT)


_BANNER_STYLE = (
    "border:2px solid #b45309;background:#fef3c7;color:#78350f;padding:10px 14px;"
    "border-radius:8px;font-weight:600;font-size:1.05em"
)


def intro_text(engine: SearchEngine) -> str:
    """The page's title and one line; the count follows the live gallery's adds and removes."""
    words = " or describe it in words," if engine.supports_words else ""
    return ("# Apparel image search\n"
            f"Upload a photo of a garment, click an example,{words} to find the {len(engine.gallery)}-image "
            "gallery's most similar clothes.")


def _header(v: SimpleNamespace, engine: SearchEngine, banner: Optional[str]) -> None:
    v.intro = gr.Markdown(intro_text(engine), elem_id="intro")
    if banner:
        gr.HTML(f'<div role="alert" id="weights-banner" style="{_BANNER_STYLE}">⚠ {html.escape(banner)}</div>')


def _about(v: SimpleNamespace, engine: SearchEngine) -> str:
    """The technical facts for the Details section: gallery classes, backbone, methods."""
    g = engine.gallery
    return (f"Gallery: **{len(g)} images** in {len(set(g.labels.tolist()))} classes; backbone "
            f"**{engine.extractor.spec.describe()}**; methods: {', '.join(get_method(m).label for m in v.methods)}.")


def _query_column(v: SimpleNamespace, engine: SearchEngine) -> None:
    """The photo, words, examples and Search first; filters; then what a shopper rarely opens, collapsed."""
    v.query = gr.Image(label="Query image", sources=SOURCES, type="filepath", format="png", height=280,
                       elem_id="query-image")
    with gr.Group(elem_id="query-words", visible=engine.supports_words):  # a direct child, for the phone order
        v.query_text = gr.Textbox(
            label="Describe the garment",
            placeholder="red summer dress; or, with an image: but in red" if engine.supports_text else "black sneakers",
            info="Words alone search by description; with an image they nudge it." if engine.supports_text else
            "Words name a garment type and colour (e.g. jeans, navy coat); press Enter to search.",
            visible=engine.supports_words,  # CLIP/SigLIP backbones, or attribute models that know types and colours
            elem_id="query-text",
        )
    files = [str(p) for p in (EXAMPLES if v.example_files is None else v.example_files) if Path(p).is_file()]
    v.examples = gr.Examples([[f] for f in files], inputs=[v.query], visible=bool(files),
                             label="Try an example (photos not in the gallery)", elem_id="examples")
    with gr.Row(elem_id="query-buttons"):
        v.search_btn = gr.Button("Search", variant="primary", elem_id="search-btn")
        v.random_btn = gr.Button("Random gallery image", elem_id="random-btn")
    v.query_info = gr.Markdown("", elem_id="query-info")
    with gr.Accordion("Filters", open=True, elem_id="filters"):
        v.types = gr.CheckboxGroup(v.values.get("type", []), label="Types (none ticked = all)",
                                   elem_id="filter-types", visible="type" in v.values)
        v.colours = gr.CheckboxGroup(v.values.get("colour", []), label="Colours (none ticked = all)",
                                     elem_id="filter-colours", visible="colour" in v.values)
    with gr.Accordion("Crop the query (optional)", open=False, elem_id="crop-panel"):
        v.crop_preview = gr.Image(label="Click two corners of the garment to search", type="filepath",
                                  interactive=False, height=240, elem_id="crop-preview")
        with gr.Row():
            v.box = gr.Textbox(label="Crop box (x0, y0, x1, y1)", placeholder="whole image", elem_id="crop-box",
                               scale=3)
            v.whole_btn = gr.Button("Whole image", scale=1, size="sm")
    with gr.Accordion("Search settings", open=False, elem_id="search-settings"):
        v.method = gr.Dropdown(v.method_choices, value=engine.default_method(), label="Similarity method",
                               visible=len(v.method_choices) > 1, elem_id="method")
        v.task = gr.Radio(
            v.tasks,
            value=v.tasks[0] if v.tasks else None,
            label="Task (learned methods)",
            info="What the classifiers judge: same garment type, same colour, or both. Cosine and Euclidean ignore it.",
            visible=bool(v.learned and len(v.tasks) > 1),  # one choice (e.g. the demo's "type"): nothing to choose
            elem_id="task",
        )
        v.k = gr.Slider(1, K_MAX_UI, value=K_DEFAULT, step=1, label="Number of results (k)", elem_id="k")
        v.dedup = gr.Checkbox(True, label="Collapse duplicates (show copies once)", elem_id="dedup")


def _guess_row(v: SimpleNamespace) -> None:
    """What the attribute models see in the photo, and the runner-up types as one-click filters."""
    with gr.Row(elem_id="guess-row"):
        v.guess_md = gr.Markdown("", elem_id="guess")
        v.alt_btns = [gr.Button("", size="sm", visible=False, elem_id=f"guess-alt-{i}") for i in range(MAX_ALTERNATIVES)]
        v.all_types_btn = gr.Button("All types", size="sm", visible=False, elem_id="guess-all")


def _results_column(v: SimpleNamespace, engine: SearchEngine) -> None:
    _guess_row(v)
    v.results = gr.Gallery(label="Results: most similar first (select one to see why it matched)", columns=3,
                           height=540, object_fit="contain", elem_id="results-gallery")
    with gr.Row(equal_height=True):
        v.more_btn = gr.Button("More like this", size="sm", elem_id="more-like")
        v.less_btn = gr.Button("Less like this", size="sm", elem_id="less-like")
        v.clear_btn = gr.Button("Clear feedback", size="sm")
    v.marks_md = gr.Markdown(marks_text(NO_MARKS), elem_id="feedback-marks")
    with gr.Group(visible=False) as v.explain_box:
        v.explain_md = gr.Markdown("", elem_id="explain-info")
        with gr.Row():
            v.explain_q = gr.Image(label="Query: where it matches", height=260, elem_id="explain-query",
                                   interactive=False)
            v.explain_r = gr.Image(label="Result: where it matches", height=260, elem_id="explain-result",
                                   interactive=False)
    with gr.Accordion("Details", open=False, elem_id="details"):
        _details(v, engine)


def _details(v: SimpleNamespace, engine: SearchEngine) -> None:
    """The technical detail, collapsed: what the app runs, the ranking table, the plots and the JSON answer."""
    gr.Markdown(_about(v, engine), elem_id="about")
    v.table = gr.Dataframe(label="Ranking", interactive=False, elem_id="results-table", visible=False)
    groups = v.values.get("type", []) + ["unlabelled"]
    map_colours = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(groups)} | {QUERY: "#000000", RESULT: "#e3001b"}
    # one plot per row: side by side, the legends were clipped
    v.hist = gr.BarPlot(
        x="score", y="count", color="part", label="Query score against the whole gallery",
        elem_id="score-histogram", height=320, color_map={"top-k": "#e8590c", "rest": "#74a9cf"},
        caption="Orange bars hold the top-k results: the cut is where orange starts.",
    )
    v.pca = gr.ScatterPlot(
        x="x", y="y", color="group", label="Gallery map (PCA), query and results marked",
        elem_id="gallery-map", height=380, tooltip=["group", "index"], color_map=map_colours,
        caption="Each dot is a gallery image, coloured by type; black = the query, red = its results.",
    )
    v.result_json = gr.JSON(label="Results (JSON)", elem_id="results-json", open=True)  # every level shown


def _compare_tab(v: SimpleNamespace, engine: SearchEngine) -> None:
    with gr.Row():
        v.image_a = gr.Image(label="Image A", sources=SOURCES, type="filepath", height=260)
        v.image_b = gr.Image(label="Image B", sources=SOURCES, type="filepath", height=260)
    with gr.Row():
        v.method_c = gr.Dropdown(v.method_choices, value=engine.default_method(), label="Similarity method")
        v.task_c = gr.Radio(v.tasks, value=v.tasks[0] if v.tasks else None, label="Task (learned methods)",
                            visible=bool(v.learned and v.tasks))
    v.compare_btn = gr.Button("Compare", variant="primary")
    v.score = gr.Markdown("", elem_id="compare-score")  # empty until a comparison (a Number showed "0")


def _manage_tab(v: SimpleNamespace) -> None:
    gr.Markdown("Add or remove gallery images. Changes are saved to the gallery folder at once.")
    v.token = gr.Textbox(label="Admin token (CBIR_ADMIN_TOKEN)", type="password", elem_id="admin-token")
    with gr.Row():
        with gr.Column():
            v.add_files = gr.File(label="Images to add", file_count="multiple", file_types=["image"],
                                  elem_id="add-files")
            v.add_label = gr.Textbox(label="Label (colour_type or a type; optional)")
            v.add_btn = gr.Button("Add to gallery")
        with gr.Column():
            v.remove_idx = gr.Textbox(label="Gallery ids or indices to remove (e.g. red_dress/003, #17)",
                                      info="Result captions show each image's id and #index.", elem_id="remove-ids")
            v.remove_btn = gr.Button("Remove from gallery", variant="stop")
    v.admin_status = gr.Markdown("", elem_id="admin-status")


def servable_tasks(engine: SearchEngine) -> list[str]:
    """The task choices the gallery's labels can serve: type and colour if every image has them, both if both."""
    have = set(engine.gallery.tasks)
    return [t for t in TASK_CHOICES if (t in have) or (t == "both" and {"type", "colour"} <= have)]


def build_layout(engine: SearchEngine, methods: list[str], banner: Optional[str], admin: bool,
                 examples: Optional[list] = None) -> SimpleNamespace:
    """Create every component inside the open Blocks; returns them by name (and the per-session states).
    `examples`: the example photos (None: the demo's; []: none, hidden)."""
    v = SimpleNamespace(methods=methods, example_files=examples, learned=[m for m in methods if get_method(m).learned],
                        method_choices=[(get_method(m).label, m) for m in methods],
                        values=available_values(engine.label_columns()), tasks=servable_tasks(engine))
    _header(v, engine, banner)
    v.picked = gr.State(None)
    v.marks = gr.State(dict(NO_MARKS))
    v.shown = gr.State([])  # gallery indices of the results on screen, in order
    v.selected = gr.State(None)  # the selected result's gallery index
    v.corner = gr.State(None)  # the first clicked corner of a crop box
    v.alternatives = gr.State([])  # the runner-up types the guess line offers, in button order
    with gr.Tab("Search"):
        with gr.Row():
            with gr.Column(scale=1, min_width=300, elem_id="query-column"):
                _query_column(v, engine)
            with gr.Column(scale=2, elem_id="results-column"):
                _results_column(v, engine)
    with gr.Tab("Compare two images"):
        _compare_tab(v, engine)
    with gr.Tab("Manage gallery", visible=admin):
        _manage_tab(v)
    return v
