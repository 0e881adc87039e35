"""``keras-nas report``: one self-contained HTML page about a search run.

Why a static page: a run directory is copied off clusters and attached to reviews; a page
whose images are embedded (base64 PNG, also written beside it) opens anywhere with no
server, no TensorBoard and no keras-nas installed.

Sections (``<section id=...>``): ``summary``, ``best-so-far``, ``score-vs-cost``,
``population`` (aging evolution) or ``controller`` (REINFORCE; from the TensorBoard scalars
``controller/...``), ``top-cells``, ``failed-trials``. A plot whose data the run lacks is
replaced by a note saying why. Nothing is written until everything is drawn, and every file
is written atomically (temp file + ``os.replace``), so a failed report leaves no debris and
an earlier report stays whole.
"""

from __future__ import annotations

import base64
import html
import os
from typing import Optional

from keras_nas.report import plots
from keras_nas.report.rundir import ReportError, Run, load_run

REPORT_DIR = "report"
INDEX = "index.html"
MAX_FAILED_ROWS = 500

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1280px;color:#222}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
img{max-width:100%;height:auto;border:1px solid #eee}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}
code{font-size:12px;word-break:break-all}.note{color:#8a6d3b;background:#fcf8e3;padding:6px 10px}
.cell{margin:14px 0 26px}
"""


def _write_atomic(path: str, data: bytes):
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _fmt(v, spec="") -> str:
    if v is None or v == "":
        return "&ndash;"
    return html.escape(format(v, spec) if spec else str(v))


class _Page:
    """Collects sections and the PNG files they embed."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list = []
        self.files: dict = {}  # file name -> PNG bytes

    def section(self, sid: str, heading: str, body: str):
        self.parts.append(
            f'<section id="{sid}">\n<h2>{html.escape(heading)}</h2>\n{body}\n</section>'
        )

    def image(self, name: str, png: bytes, alt: str) -> str:
        self.files[name] = png
        data = base64.b64encode(png).decode("ascii")
        return (
            f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" data-file="{name}">'
            f"<br><small>also saved as <code>{name}</code></small>"
        )

    @staticmethod
    def note(text: str) -> str:
        return f'<p class="note">{html.escape(text)}</p>'

    def html(self) -> bytes:
        body = "\n".join(self.parts)
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head>\n<body>\n"
            f"<h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n"
        ).encode("utf-8")


def _summary(run: Run) -> str:
    best = run.best()
    cfg = run.config
    rows = [
        ("run directory", html.escape(os.path.abspath(run.path))),
        ("search space", _fmt(cfg.get("space") or run.summary.get("space"))),
        ("controller", _fmt(run.controller or "unknown")),
        ("data", _fmt(run.summary.get("data", {}).get("description"))),
        (
            "trials",
            f"{len(run.trials)} ({len(run.completed)} completed, {len(run.not_completed)} did not complete)"
            + ("" if run.summary else " &ndash; the search has not finished (no run.json yet)"),
        ),
        (
            f"best {html.escape(run.objective)}",
            f"{_fmt(best['score'], '.4f')} (trial {_fmt(best['trial'])}, id {_fmt(best['trial_id'])}, "
            f"{_fmt(best.get('params'), ',')} params)",
        ),
        ("best architecture", f"<code>{html.escape(str(best.get('architecture')))}</code>"),
    ]
    final = run.summary.get("best", {})
    if final.get("test_accuracy") is not None:
        rows.append(("best, held-out test accuracy", _fmt(final["test_accuracy"], ".4f")))
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _cells(run: Run, page: _Page, top_k: int, engine: str) -> str:
    from keras_nas import visualize
    from keras_nas.rundir import load_architecture

    ranked = sorted(run.completed, key=lambda t: -t["score"])[:top_k]
    out = []
    for rank, t in enumerate(ranked, 1):
        head = (
            f"<h3>#{rank}: trial {_fmt(t['trial'])} (id {_fmt(t['trial_id'])}), {html.escape(run.objective)} "
            f"{_fmt(t['score'], '.4f')}, {_fmt(t.get('params'), ',')} params</h3>"
            f"<p><code>{html.escape(str(t.get('architecture')))}</code></p>"
        )
        try:
            arch = load_architecture(str(t.get("architecture")))
        except ValueError as e:  # JobError: an undecodable row
            out.append(f'<div class="cell">{head}{page.note(f"cannot draw it: {e}")}</div>')
            continue
        try:
            png = visualize.architecture_png(arch, engine)
        except ImportError as e:  # no Pillow
            text = html.escape(visualize.architecture_text(arch))
            out.append(f'<div class="cell">{head}{page.note(str(e))}<pre>{text}</pre></div>')
            continue
        img = page.image(f"cells_{rank}.png", png, f"cells of trial {t['trial']}")
        out.append(f'<div class="cell">{head}{img}</div>')
    drawn = "Graphviz (dot)" if engine != "pillow" and visualize.graphviz_available() else "Pillow"
    return f"<p>The {len(ranked)} best completed trial(s), drawn with {drawn}.</p>" + "".join(out)


def _failed(run: Run) -> str:
    rows = run.not_completed
    if not rows:
        return "<p>Every trial completed.</p>"
    body = "".join(
        f"<tr><td>{_fmt(t.get('trial'))}</td><td>{_fmt(t.get('trial_id'))}</td><td>{_fmt(t.get('status'))}</td>"
        f"<td>{_fmt(t.get('failure_reason') or 'no reason recorded')}</td>"
        f"<td><code>{html.escape(str(t.get('architecture', ''))[:300])}</code></td></tr>"
        for t in rows[:MAX_FAILED_ROWS]
    )
    more = (
        f"<p>{len(rows) - MAX_FAILED_ROWS} more in results.csv.</p>"
        if len(rows) > MAX_FAILED_ROWS
        else ""
    )
    return (
        f"<p>{len(rows)} trial(s) did not complete; the reason is the last line of the trial's error.</p>"
        "<table><tr><th>trial</th><th>id</th><th>status</th><th>reason</th><th>architecture</th></tr>"
        f"{body}</table>{more}"
    )


def build_report(run: Run, *, top_k: int = 3, engine: str = "auto") -> _Page:
    """The page of ``run`` in memory (HTML and PNG files); nothing is written."""
    page = _Page(f"keras-nas search report: {os.path.basename(os.path.abspath(run.path))}")
    page.section("summary", "Summary", _summary(run))
    page.section(
        "best-so-far",
        "Best so far",
        page.image("best_so_far.png", plots.best_so_far(run), "best so far vs trials and time"),
    )
    if any(t.get("params") for t in run.completed):
        body = page.image(
            "score_vs_cost.png", plots.score_vs_cost(run), "score vs parameters with Pareto front"
        )
    else:
        body = page.note(
            "No parameter counts were recorded for these trials, so there is no score/cost plot."
        )
    page.section("score-vs-cost", "Score vs cost (Pareto front)", body)
    if run.controller == "evolution":
        size, source = run.population_size()
        if size:
            body = (
                page.image(
                    "population.png", plots.population(run, size), "population fitness over trials"
                )
                + f"<p>Population after each completed trial: the last P = {size} completed trials "
                f"(P from {html.escape(source)}).</p>"
            )
        else:
            body = page.note(f"No population plot: {source}.")
        page.section("population", "Population fitness (aging evolution)", body)
    ctrl = {
        t: v
        for t, v in run.scalars.items()
        if t.startswith("controller/")
        and not t.startswith(("controller/population/", "controller/failed"))
    }
    policy = any(t.startswith(("controller/entropy", "controller/prob/")) for t in ctrl)
    if run.controller == "reinforce" or policy:
        if policy:
            body = page.image(
                "controller.png", plots.controller(ctrl), "controller entropy and probabilities"
            )
        else:
            body = page.note(
                "No controller/entropy or controller/prob/... scalars in "
                f"{os.path.join(run.path, 'tensorboard', 'search')} (was the search run with "
                "--notensorboard?), so the controller plot is skipped."
            )
        page.section("controller", "Controller (REINFORCE)", body)
    page.section("top-cells", f"Top {top_k} architectures", _cells(run, page, top_k, engine))
    page.section("failed-trials", "Trials that did not complete", _failed(run))
    return page


def write_report(
    run_dir: str, out_dir: Optional[str] = None, *, top_k: int = 3, engine: str = "auto"
) -> str:
    """Write ``RUN_DIR/report/index.html`` (or ``out_dir/index.html``) and its PNGs; return the page's path.

    Raises :class:`ReportError` (naming the path) when ``run_dir`` is missing, not a run
    directory or has no completed trial; nothing is written then.
    """
    if top_k < 1:
        raise ReportError(f"top_k must be at least 1, got {top_k}.")
    run = load_run(run_dir)
    if engine == "graphviz":
        from keras_nas.visualize import graphviz_available

        if not graphviz_available():
            raise ReportError(
                "drawing cells with Graphviz needs the dot binary and the graphviz Python package "
                "(`make report-deps`, pip install graphviz); use the pillow renderer instead."
            )
    page = build_report(run, top_k=top_k, engine=engine)
    out = out_dir or os.path.join(run_dir, REPORT_DIR)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ReportError(f"{out!r} is a file; the report needs a directory there.")
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):  # cells of an earlier report with a larger top_k
        if name.startswith("cells_") and name.endswith(".png") and name not in page.files:
            os.remove(os.path.join(out, name))
    for name, png in page.files.items():
        _write_atomic(os.path.join(out, name), png)
    index = os.path.join(out, INDEX)
    _write_atomic(index, page.html())
    return index
