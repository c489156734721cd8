"""Wiring the layout's components to the handlers. UI events are private (not in view_api, not callable by
clients); the public API is `cbir.ui.api`."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from cbir.ui.crop import box_from_corners, draw_box
from cbir.ui.api import ENGINE_CONCURRENCY
from cbir.ui.errors import decode, toast_only
from cbir.ui.layout import intro_text
from cbir.search.words import display
from cbir.ui.handlers import MAX_ALTERNATIVES, NO_MARKS, Handlers, guess, marks_text, similarity_text

UI = dict(api_visibility="private")
# preprocess=False: Gradio hands over the upload untouched and the library decodes it, with its clear errors.
MODEL = dict(concurrency_id=ENGINE_CONCURRENCY, preprocess=False, **UI)


def _preview(h: Handlers, payload) -> str | None:
    """The query decoded as the search will decode it, as a PNG for the crop panel; None for no or a bad image.

    Used with preprocess=False: Gradio's own decoding of a bad upload answered HTTP 500 and logged a traceback."""
    try:
        return None if payload is None else h._save(decode(payload), "query-")
    except gr.Error:
        return None  # ui_check_upload says why


def _guess_updates(result: dict, types: list) -> tuple:
    """The guess line, one button per runner-up type (hidden when unused), "All types" while a type filter is on,
    and the alternatives' state."""
    text, alternatives = guess(result.get("query") or {})
    buttons = [gr.update(value=display(a), visible=True) if a else gr.update(visible=False)
               for a in alternatives + [None] * (MAX_ALTERNATIVES - len(alternatives))]
    return (text, *buttons, gr.update(visible=bool(types)), alternatives)


def _wire_search(v: SimpleNamespace, h: Handlers) -> None:
    search_inputs = [v.query, v.method, v.task, v.k, v.picked, v.types, v.colours, v.dedup, v.box, v.marks,
                     v.query_text]
    guess_outputs = [v.guess_md, *v.alt_btns, v.all_types_btn, v.alternatives]
    outputs = [v.results, v.table, v.result_json, v.hist, v.pca, v.shown, v.selected, v.explain_box, *guess_outputs]

    def ui_search(*args):
        items, df, result, hst, pc = h.ui_search(*args)
        return (items, gr.update(value=df, visible=True), result, hst, pc,
                [r["index"] for r in result["results"]], None, gr.update(visible=False),
                *_guess_updates(result, args[5]))

    search = toast_only(ui_search, len(outputs))

    def auto_search(image, *rest):
        """A search the page starts by itself (a new photo, a changed setting): nothing to do without a query."""
        if image is None and not str(rest[-1] or "").strip():
            return tuple(gr.skip() for _ in outputs)
        return search(image, *rest)

    model = dict(MODEL, trigger_mode="always_last")  # a burst of changes searches once, with the last settings
    reset = (dict(NO_MARKS), marks_text(NO_MARKS), None, "", None, gr.update(visible=False))
    reset_outputs = [v.marks, v.marks_md, v.selected, v.box, v.corner, v.explain_box]
    v.random_btn.click(
        lambda: h.ui_random() + reset, None, [v.query, v.query_info, v.picked] + reset_outputs,
        api_name="_ui_random", **UI,
    ).then(search, search_inputs, outputs, api_name="_ui_search_random", **MODEL)
    # A user upload, webcam shot, paste or clear replaces the picked gallery image: forget it and its feedback, then
    # search with the current settings (a clear searches nothing).
    forget = (lambda: (None, "") + reset), None, [v.picked, v.query_info] + reset_outputs
    v.query.input(*forget, api_name="_ui_forget", queue=False, **UI).then(
        auto_search, search_inputs, outputs, api_name="_ui_search_input", **model)

    def ui_check_upload(payload):
        try:
            decode(payload)
        except gr.Error as e:
            gr.Warning(e.message)
            return None
        return gr.skip()

    v.query.upload(ui_check_upload, v.query, v.query, api_name="_ui_check_upload", preprocess=False, **UI)
    v.query.change(lambda p: _preview(h, p), v.query, v.crop_preview, api_name="_ui_preview", queue=False, preprocess=False, **UI)
    v.search_btn.click(search, search_inputs, outputs, api_name="_ui_search", **MODEL)
    # a changed setting or filter searches again (when there is a query)
    gr.on([v.method.input, v.task.input, v.k.release, v.types.input, v.colours.input, v.dedup.input], auto_search,
          search_inputs, outputs, api_name="_ui_search_settings", **model)
    # words: Enter searches; without a text encoder words replace the photo and the filters (they name the type and
    # colour themselves)
    words = v.query_text.submit
    if not h.engine.supports_text:
        words = v.query_text.submit(lambda: (None, [], []) + (None, "") + reset, None,
                                    [v.query, v.types, v.colours, v.picked, v.query_info] + reset_outputs,
                                    api_name="_ui_words_forget", queue=False, **UI).then
    words(search, search_inputs, outputs, api_name="_ui_search_words", **MODEL)
    # an example photo searches at once (it is not a gallery image: nothing to leave out)
    v.examples.load_input_event.then(*forget, api_name="_ui_example_forget", queue=False, **UI).then(
        search, search_inputs, outputs, api_name="_ui_search_example", **MODEL)
    _wire_guess(v, search, search_inputs, outputs)


def _wire_guess(v: SimpleNamespace, search, search_inputs: list, outputs: list) -> None:
    """A runner-up type's button filters to that type and searches; "All types" clears the type filter."""
    for i, btn in enumerate(v.alt_btns):
        btn.click(lambda alts, i=i: [alts[i]] if i < len(alts) else gr.skip(), v.alternatives, v.types,
                  api_name=f"_ui_guess_{i}", queue=False, **UI).then(
            search, search_inputs, outputs, api_name=f"_ui_search_guess_{i}", **MODEL)
    v.all_types_btn.click(lambda: [], None, v.types, api_name="_ui_all_types", queue=False, **UI).then(
        search, search_inputs, outputs, api_name="_ui_search_all_types", **MODEL)


def _wire_crop(v: SimpleNamespace, h: Handlers) -> None:
    def ui_corner(path, first, evt: gr.SelectData):
        point = [float(x) for x in evt.index]
        if first is None:
            return gr.skip(), point, f"{point[0]:.0f}, {point[1]:.0f}, …"
        try:
            b = box_from_corners(first, point)
            boxed = h._save(draw_box(decode(path), b), "crop-")
        except (gr.Error, ValueError) as e:
            gr.Warning(getattr(e, "message", str(e)))
            return gr.skip(), None, ""
        return boxed, None, ", ".join(f"{x:.0f}" for x in b)

    v.crop_preview.select(ui_corner, [v.query, v.corner], [v.crop_preview, v.corner, v.box],
                          api_name="_ui_corner", queue=False, preprocess=False, **UI)
    v.whole_btn.click(lambda p: (_preview(h, p), None, ""), v.query, [v.crop_preview, v.corner, v.box],
                      api_name="_ui_whole", queue=False, preprocess=False, **UI)


def _wire_results(v: SimpleNamespace, h: Handlers) -> None:
    def ui_select(shown_idx, evt: gr.SelectData):
        return shown_idx[evt.index] if shown_idx and evt.index is not None and evt.index < len(shown_idx) else None

    def ui_explain(image, i, method_v, task_v, box_v):
        if i is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.update(visible=False)
        qa, qb, sc = h.explain(decode(image), i, method_v, task_v, box_v)
        gl = h.engine.gallery
        info = (f"**Why #{i} ({gl.labels[i] or 'unlabelled'}) matched** (score {sc:.3f}): warm colours mark where "
                "each image's last feature map is most like the other image as a whole.")
        return qa, qb, info, gr.update(visible=True)

    v.results.select(ui_select, v.shown, v.selected, api_name="_ui_select", queue=False, **UI).then(
        toast_only(ui_explain, 4), [v.query, v.selected, v.method, v.task, v.box],
        [v.explain_q, v.explain_r, v.explain_md, v.explain_box], api_name="_ui_explain", **MODEL,
    )

    def ui_mark(kind):
        def mark(m, i):
            if i is None:
                gr.Warning("Select a result first (click its thumbnail).")
                return gr.skip(), gr.skip()
            other = "negatives" if kind == "positives" else "positives"
            m = {kind: sorted(set(m[kind]) | {int(i)}), other: [x for x in m[other] if x != int(i)]}
            return m, marks_text(m)

        return mark

    v.more_btn.click(ui_mark("positives"), [v.marks, v.selected], [v.marks, v.marks_md], api_name="_ui_more",
                     queue=False, **UI)
    v.less_btn.click(ui_mark("negatives"), [v.marks, v.selected], [v.marks, v.marks_md], api_name="_ui_less",
                     queue=False, **UI)
    v.clear_btn.click(lambda: (dict(NO_MARKS), marks_text(NO_MARKS)), None, [v.marks, v.marks_md],
                      api_name="_ui_clear", queue=False, **UI)


def _wire_admin(v: SimpleNamespace, h: Handlers) -> None:
    """Add and remove: the status line says what happened (a refusal replaces an older success and the other way
    round, no stale toast), the header's count follows, and a successful add empties the upload box."""

    def status(action):
        def run(*args):
            try:
                text, clear = action(*args)
            except gr.Error as e:
                return f"⚠ {e.message}", intro_text(h.engine), gr.skip()
            return text, intro_text(h.engine), clear
        return run

    def ui_add(files, label, tok):
        added = h.add([{"path": f} if isinstance(f, str) else f for f in files or []], [label] if label else [], tok)
        return f"Added {len(added)} image(s) as gallery indices {', '.join(map(str, added))}.", None

    def ui_remove(idx, tok):
        return f"Removed {h.remove(idx, tok)} image(s); the gallery now has {len(h.engine.gallery)}.", ""

    v.add_btn.click(status(ui_add), [v.add_files, v.add_label, v.token], [v.admin_status, v.intro, v.add_files],
                    api_name="_ui_add", concurrency_id=ENGINE_CONCURRENCY, **UI)
    v.remove_btn.click(status(ui_remove), [v.remove_idx, v.token], [v.admin_status, v.intro, v.remove_idx],
                       api_name="_ui_remove", concurrency_id=ENGINE_CONCURRENCY, **UI)


def wire_events(v: SimpleNamespace, h: Handlers) -> None:
    """Connect every UI component of `v` (from `build_layout`) to `h`; call inside the open Blocks."""
    _wire_search(v, h)
    _wire_crop(v, h)
    _wire_results(v, h)
    def ui_compare(a, b, method, task):
        return f"**{similarity_text(h.compare(a, b, method, task))}** ({h.method(method)})"

    v.compare_btn.click(toast_only(ui_compare, 1), [v.image_a, v.image_b, v.method_c, v.task_c], v.score,
                        api_name="_ui_compare", **MODEL)
    _wire_admin(v, h)
