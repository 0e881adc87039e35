"""The report's plots, drawn with matplotlib's object API into PNG bytes.

Why ``matplotlib.figure.Figure`` + the Agg canvas and not ``pyplot``: no global backend is
switched (a notebook that calls the report keeps its own), and nothing opens a window.
matplotlib is imported on first use, so ``keras-nas`` starts without it.
"""

from __future__ import annotations

import io
import statistics

FIGSIZE = (7.0, 3.6)
DPI = 100


def _figure(ncols: int = 1, figsize=FIGSIZE):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "keras-nas report draws its plots with matplotlib: pip install 'keras-nas[viz]' "
            "(or pip install matplotlib)."
        ) from None
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def pareto_front(points):
    """Indices of ``[(cost, score)]`` not dominated by another point (lower cost, higher score)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def population_windows(done: list, size: int) -> list:
    """``[(trial number, scores of the population)]`` after each completed trial, the population
    being the last ``size`` completed trials (aging evolution's, by definition)."""
    return [
        (t["trial"], [w["score"] for w in done[max(0, i + 1 - size) : i + 1]])
        for i, t in enumerate(done)
    ]


def best_so_far(run) -> bytes:
    """Left: every trial's score and the running best by trial number (failed trials marked).
    Right: the running best against wall-clock minutes since the first trial started."""
    fig, (ax, ax_t) = _figure(2, (10.0, 3.6))
    done = run.completed
    xs = [t["trial"] for t in done]
    ys = [t["score"] for t in done]
    best, run_best = [], float("-inf")
    for y in ys:
        run_best = max(run_best, y)
        best.append(run_best)
    ax.scatter(xs, ys, s=14, color="#7f7f7f", alpha=0.7, label="trial score", zorder=2)
    ax.step(xs, best, where="post", color="#1f77b4", lw=2, label="best so far", zorder=3)
    failed = [t["trial"] for t in run.not_completed]
    if failed:
        ax.scatter(
            failed,
            [min(ys)] * len(failed),
            marker="x",
            color="#d62728",
            s=30,
            zorder=4,
            label=f"did not complete ({len(failed)})",
        )
    ax.set_xlabel("trial")
    ax.set_ylabel(run.objective)
    ax.set_title("best so far vs trials")
    ax.legend(loc="best", fontsize=8)
    timed = [t for t in done if t.get("t_end") is not None]
    starts = [t["t_start"] for t in run.trials if t.get("t_start") is not None]
    if timed and starts:
        t0 = min(starts)
        timed.sort(key=lambda t: t["t_end"])
        mins, tb, rb = [], [], float("-inf")
        for t in timed:
            rb = max(rb, t["score"])
            mins.append((t["t_end"] - t0) / 60)
            tb.append(rb)
        ax_t.step(mins, tb, where="post", color="#1f77b4", lw=2)
        ax_t.scatter(mins, [t["score"] for t in timed], s=14, color="#7f7f7f", alpha=0.7)
        ax_t.set_xlabel("wall-clock minutes since the first trial started")
    else:
        ax_t.text(
            0.5,
            0.5,
            "no trial timings recorded",
            ha="center",
            va="center",
            transform=ax_t.transAxes,
        )
    ax_t.set_ylabel(run.objective)
    ax_t.set_title("best so far vs time")
    return _png(fig)


def score_vs_cost(run) -> bytes:
    """Score against parameter count, the (fewest params, highest score) Pareto front drawn."""
    fig, (ax,) = _figure()
    pts = [(t["params"], t["score"], t) for t in run.completed if t.get("params")]
    front = pareto_front([(c, s) for c, s, _ in pts])
    ax.scatter(
        [c for c, _, _ in pts],
        [s for _, s, _ in pts],
        s=16,
        color="#7f7f7f",
        alpha=0.7,
        label="trial",
    )
    fp = sorted((pts[i][0], pts[i][1]) for i in front)
    ax.step([c for c, _ in fp], [s for _, s in fp], where="post", color="#d62728", lw=1.5)
    ax.scatter(
        [c for c, _ in fp],
        [s for _, s in fp],
        s=36,
        color="#d62728",
        zorder=3,
        label=f"Pareto front ({len(fp)})",
    )
    best = run.best()
    if best.get("params"):
        ax.annotate(
            f"best: trial {best['trial']}",
            (best["params"], best["score"]),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=8,
        )
    costs = [c for c, _, _ in pts]
    if max(costs) > 10 * min(costs):
        ax.set_xscale("log")
    ax.set_xlabel("parameters (search network)")
    ax.set_ylabel(run.objective)
    ax.set_title("score vs cost")
    ax.legend(loc="best", fontsize=8)
    return _png(fig)


def population(run, size: int) -> bytes:
    """Aging evolution's population after each completed trial: the last ``size`` completed
    trials (its population by definition), as dots, with its best and median."""
    fig, (ax,) = _figure()
    xs, best, med = [], [], []
    for i, (trial, window) in enumerate(population_windows(run.completed, size)):
        ax.scatter(
            [trial] * len(window),
            window,
            s=16,
            color="#9467bd",
            alpha=0.45,
            lw=0,
            label="members" if i == 0 else None,
        )
        xs.append(trial)
        best.append(max(window))
        med.append(statistics.median(window))
    ax.plot(xs, best, color="#2ca02c", lw=2, label="population best")
    ax.plot(xs, med, color="#ff7f0e", lw=2, label="population median")
    ax.set_xlabel("trial")
    ax.set_ylabel(run.objective)
    ax.set_title(f"population fitness (P = {size})")
    ax.legend(loc="best", fontsize=8)
    return _png(fig)


def controller(scalars: dict) -> bytes:
    """REINFORCE statistics by trial: mean policy entropy; reward and baseline; the probability
    of each decision's most likely option (thin lines) and their mean."""
    fig, (ax_e, ax_r, ax_p) = _figure(3, (12.0, 3.6))

    def line(ax, tag, **kw):
        pts = scalars.get(tag, [])
        if pts:
            ax.plot([p[0] for p in pts], [p[2] for p in pts], **kw)
        return bool(pts)

    if not line(ax_e, "controller/entropy", color="#1f77b4", lw=2):
        ax_e.text(0.5, 0.5, "no entropy logged", ha="center", va="center", transform=ax_e.transAxes)
    ax_e.set_title("policy entropy (mean over decisions)")
    ax_e.set_xlabel("trial")
    line(ax_r, "controller/reward", color="#2ca02c", lw=1.5, label="reward")
    line(ax_r, "controller/baseline", color="#ff7f0e", lw=1.5, label="baseline")
    ax_r.set_title("reward and baseline")
    ax_r.set_xlabel("trial")
    if ax_r.lines:
        ax_r.legend(fontsize=8)
    probs = {t: v for t, v in scalars.items() if t.startswith("controller/prob/")}
    by_step: dict = {}
    for pts in probs.values():
        ax_p.plot([p[0] for p in pts], [p[2] for p in pts], color="#9467bd", lw=0.6, alpha=0.35)
        for s, _, v in pts:
            by_step.setdefault(s, []).append(v)
    if by_step:
        steps = sorted(by_step)
        ax_p.plot(
            steps,
            [statistics.mean(by_step[s]) for s in steps],
            color="#9467bd",
            lw=2.2,
            label=f"mean of {len(probs)} decisions",
        )
        ax_p.legend(fontsize=8)
    ax_p.set_ylim(0, 1.02)
    ax_p.set_title("probability of the most likely option")
    ax_p.set_xlabel("trial")
    return _png(fig)
