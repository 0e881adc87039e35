"""`keras-nas report`: the page, its plots and cells, bad input, a headless browser; results_summary.

Most tests use run directories written by hand in the files' real formats (results.json,
run.json, trial_costs.json, TensorBoard events through tensorboard's own writer): a search
would cost minutes. One test reports on a real tiny search to keep the formats honest.
"""

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from _timing import scaled

from keras_nas import cli, zoo
from keras_nas.report import load_run, plots, read_scalars, write_report
from keras_nas.space import NASNetCellSpace

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BAD_REASON = "ValueError: cell input <8x8> is too small for 2 reductions"
SECTIONS = ("summary", "best-so-far", "score-vs-cost", "top-cells", "failed-trials")


def _architectures():
    import random

    space = NASNetCellSpace(num_blocks=3)
    rng = random.Random(0)
    return [str(zoo.NASNET_A), str(zoo.AMOEBANET_A), str(zoo.DARTS_V2)] + [
        str(space.decode(space.sample(rng))) for _ in range(5)
    ]


def make_run(
    root,
    controller="evolution",
    events=True,
    scores=(0.31, 0.42, None, 0.40, 0.55, None, 0.52, 0.61),
):
    """A run directory as `keras-nas search` leaves it (no tuner project: the report does not read it)."""
    os.makedirs(root, exist_ok=True)
    archs = _architectures()
    t0 = 1_800_000_000.0
    trials, costs = [], {}
    for i, score in enumerate(scores):
        start = t0 + 30 * i
        costs[str(i)] = {
            "started": start,
            "train_seconds": 25.0 + i,
            "params": 10_000 + 7_000 * ((i * 5) % 8),
        }
        trials.append(
            {
                "trial": i + 1,
                "trial_id": str(i),
                "status": "COMPLETED" if score is not None else "FAILED",
                "score": score,
                "params": costs[str(i)]["params"],
                "train_seconds": 25.0 + i,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start)),
                "architecture": archs[i],
                "failure_reason": ""
                if score is not None
                else (BAD_REASON if i == 2 else "ResourceExhaustedError: OOM"),
                "hyperparameters": {},
            }
        )
    with open(os.path.join(root, "results.json"), "w") as f:
        json.dump({"objective": "val_accuracy", "direction": "max", "trials": trials}, f)
    with open(os.path.join(root, "trial_costs.json"), "w") as f:
        json.dump(costs, f)
    with open(os.path.join(root, "run.json"), "w") as f:
        json.dump(
            {
                "job": "search",
                "space": "nasnet",
                "config": {
                    "space": "nasnet",
                    "controller": controller,
                    "population_size": 3 if controller == "evolution" else 0,
                },
                "data": {"description": "digits: hand-made"},
                "best": {"test_accuracy": 0.58},
            },
            f,
        )
    if events:
        _write_events(os.path.join(root, "tensorboard", "search"), controller, len(scores))
    return root


def _write_events(logdir, controller, n):
    """Scalars as TF2's tf.summary.scalar writes them (rank-0 float tensors), through tensorboard's
    own record writer (its EventFileWriter would import TensorFlow); one tag as a TF1 simple_value."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    def tensor_value(tag, x):
        t = tensor_pb2.TensorProto(
            dtype=1,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
            tensor_content=__import__("struct").pack("<f", x),
        )
        return summary_pb2.Summary.Value(tag=tag, tensor=t)

    os.makedirs(logdir, exist_ok=True)
    w = RecordWriter(open(os.path.join(logdir, "events.out.tfevents.1800000000.test.1.v2"), "wb"))
    w.write(
        event_pb2.Event(wall_time=1_800_000_000.0, file_version="brain.Event:2").SerializeToString()
    )
    for step in range(1, n + 1):
        vals = [tensor_value("trial/score", 0.1 * step)]
        if controller == "reinforce":
            vals += [
                tensor_value("controller/entropy", 2.0 - 0.15 * step),
                summary_pb2.Summary.Value(tag="controller/baseline", simple_value=0.05 * step),
                tensor_value("controller/reward", 0.06 * step),
            ]
            vals += [
                tensor_value(
                    f"controller/prob/normal/b{b}_op0", min(1.0, 0.2 + 0.08 * step + 0.05 * b)
                )
                for b in range(3)
            ]
        else:
            vals.append(tensor_value("controller/population/size", float(min(step, 3))))
        ev = event_pb2.Event(
            step=step, wall_time=1_800_000_000.0 + step, summary=summary_pb2.Summary(value=vals)
        )
        w.write(ev.SerializeToString())
    w.close()


@pytest.fixture(scope="module")
def evo_run(tmp_path_factory):
    return make_run(str(tmp_path_factory.mktemp("evo") / "run"))


@pytest.fixture(scope="module")
def rl_run(tmp_path_factory):
    return make_run(str(tmp_path_factory.mktemp("rl") / "run"), controller="reinforce")


def _sections(text):
    return set(re.findall(r'<section id="([^"]+)">', text))


def _assert_real_png(data):
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(data)).convert("RGB")
    assert img.width > 100 and img.height > 100
    colours = img.getcolors(maxcolors=1 << 20)
    assert len(colours) > 10, "blank picture"
    # not an almost-white page: at least 1% of the pixels are clearly darker than the background
    dark = sum(c for c, (r, g, b) in colours if r + g + b < 600)
    assert dark > 0.01 * img.width * img.height


# -- the page ----------------------------------------------------------------------------------


def test_evolution_report_has_every_section_and_real_pictures(evo_run):
    index = write_report(evo_run)
    assert index == os.path.join(evo_run, "report", "index.html")
    text = open(index, encoding="utf-8").read()
    assert _sections(text) == set(SECTIONS) | {"population"}
    assert "P = 3" in text and "--population_size" in text
    files = sorted(os.listdir(os.path.dirname(index)))
    assert files == [
        "best_so_far.png",
        "cells_1.png",
        "cells_2.png",
        "cells_3.png",
        "index.html",
        "population.png",
        "score_vs_cost.png",
    ]
    embedded = dict(
        re.findall(r'src="data:image/png;base64,([^"]+)"[^>]*data-file="([^"]+)"', text)
    )
    assert len(embedded) == 6
    for data, name in embedded.items():  # the page embeds exactly the PNGs written beside it
        png = open(os.path.join(evo_run, "report", name), "rb").read()
        assert base64.b64decode(data) == png
        _assert_real_png(png)
    # the best trial (0.61, trial 8) is ranked first with its architecture
    best_arch = html.escape(_architectures()[7])
    assert text.index("#1: trial 8") < text.index("#2: trial 5") < text.index("#3: trial 7")
    assert best_arch in text
    assert not any(name.endswith(".tmp-" + str(os.getpid())) for name in files)


def test_failed_trials_are_listed_with_their_reasons(evo_run):
    text = open(write_report(evo_run), encoding="utf-8").read()
    failed = text[text.index('<section id="failed-trials">') :]
    assert "2 trial(s) did not complete" in failed
    assert html.escape(BAD_REASON) in failed and "<8x8>" not in failed  # escaped, not markup
    assert "ResourceExhaustedError: OOM" in failed
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td><td>FAILED</td>", failed)
    assert rows == [("3", "2"), ("6", "5")]


def test_reinforce_report_plots_the_controller_scalars(rl_run):
    text = open(write_report(rl_run, top_k=1), encoding="utf-8").read()
    assert _sections(text) == set(SECTIONS) | {"controller"}
    _assert_real_png(open(os.path.join(rl_run, "report", "controller.png"), "rb").read())
    assert sorted(
        f for f in os.listdir(os.path.join(rl_run, "report")) if f.startswith("cells_")
    ) == ["cells_1.png"]


def test_reinforce_without_tensorboard_logs_says_why(tmp_path):
    run = make_run(str(tmp_path / "run"), controller="reinforce", events=False)
    text = open(write_report(run), encoding="utf-8").read()
    assert "controller" in _sections(text)
    assert "--notensorboard" in text and "controller plot is skipped" in text
    assert not os.path.exists(os.path.join(run, "report", "controller.png"))


def test_scalars_are_read_without_tensorflow(rl_run):
    s = read_scalars(os.path.join(rl_run, "tensorboard", "search"))
    assert [round(v, 4) for _, _, v in s["controller/entropy"]][:3] == [
        1.85,
        1.7,
        1.55,
    ]  # tensor scalars
    assert [round(v, 4) for _, _, v in s["controller/baseline"]][:2] == [
        0.05,
        0.1,
    ]  # simple_value scalars
    assert len([t for t in s if t.startswith("controller/prob/")]) == 3
    assert read_scalars(os.path.join(rl_run, "no_such_dir")) == {}


def test_truncated_event_file_keeps_the_complete_records(rl_run, tmp_path):
    src = os.path.join(rl_run, "tensorboard", "search")
    f = os.listdir(src)[0]
    data = open(os.path.join(src, f), "rb").read()
    (tmp_path / f).write_bytes(data[:-20])  # a writer killed mid-record
    s = read_scalars(str(tmp_path))
    assert 0 < len(s["controller/entropy"]) < 8


def test_population_windows_and_pareto_front():
    done = [{"trial": i + 1, "score": s} for i, s in enumerate([0.1, 0.5, 0.3, 0.2])]
    assert plots.population_windows(done, 2) == [
        (1, [0.1]),
        (2, [0.1, 0.5]),
        (3, [0.5, 0.3]),
        (4, [0.3, 0.2]),
    ]
    pts = [(100, 0.5), (50, 0.4), (200, 0.45), (300, 0.7), (50, 0.3)]
    assert sorted(plots.pareto_front(pts)) == [0, 1, 3]


def test_population_size_falls_back_to_the_logged_size(tmp_path):
    run = make_run(str(tmp_path / "run"))
    summary = json.load(open(os.path.join(run, "run.json")))
    summary["config"]["population_size"] = 0  # the default: P was chosen by the oracle
    json.dump(summary, open(os.path.join(run, "run.json"), "w"))
    assert load_run(run).population_size() == (3, "the logged controller/population/size")


def test_a_second_report_replaces_the_first(evo_run):
    write_report(evo_run, top_k=3)
    write_report(evo_run, top_k=1)
    files = os.listdir(os.path.join(evo_run, "report"))
    assert "cells_1.png" in files and "cells_2.png" not in files and "cells_3.png" not in files
    text = open(os.path.join(evo_run, "report", "index.html"), encoding="utf-8").read()
    assert "#2:" not in text


def test_a_failing_plot_writes_nothing(tmp_path, monkeypatch):
    run = make_run(str(tmp_path / "run"))

    def boom(run):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(plots, "score_vs_cost", boom)
    with pytest.raises(RuntimeError, match="plot failed"):
        write_report(run)
    assert not os.path.exists(os.path.join(run, "report"))


# -- the command line and bad input ------------------------------------------------------------


def test_cli_report_writes_the_page(evo_run, tmp_path, capsys):
    out = tmp_path / "elsewhere"
    assert (
        cli.main(["report", evo_run, f"--output_dir={out}", "--top_k=2", "--renderer=pillow"]) == 0
    )
    assert f"report: {out / 'index.html'}" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("cells_*.png")) == ["cells_1.png", "cells_2.png"]
    assert "drawn with Pillow" in (out / "index.html").read_text()


def _listing(path):
    return sorted(
        os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs
    )


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("missing", "does not exist"),
        ("file", "is a file, not a search output directory"),
        ("empty", "is not a keras-nas search run directory: it has no results.json"),
        ("corrupt", "cannot read the trial results"),
        ("none-finished", "none of the 2 trial(s) in results.json completed"),
    ],
)
def test_bad_input_exits_2_naming_the_path_and_writes_nothing(case, fragment, tmp_path, capsys):
    path = tmp_path / "run"
    if case == "file":
        path.write_text("x")
    elif case == "empty":
        path.mkdir()
    elif case == "corrupt":
        path.mkdir()
        (path / "results.json").write_text('{"trials": [')
    elif case == "none-finished":
        make_run(str(path), scores=(None, None), events=False)
    before = _listing(tmp_path)
    assert cli.main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-nas report: error: ") and fragment in err
    assert str(path) in err
    assert _listing(tmp_path) == before


def test_cli_report_usage_errors(capsys):
    assert cli.main(["report"]) == 2
    assert "needs exactly one RUN_DIR argument" in capsys.readouterr().err
    assert cli.main(["report", "x", "--top_k=0"]) == 2
    assert "flag --top_k=0" in capsys.readouterr().err


def test_graphviz_renderer_missing_is_bad_input(evo_run, monkeypatch, capsys):
    from keras_nas import visualize

    monkeypatch.setattr(visualize.shutil, "which", lambda name: None)
    assert cli.main(["report", evo_run, "--renderer=graphviz", f"--output_dir={evo_run}/gv"]) == 2
    assert "needs the dot binary" in capsys.readouterr().err
    assert not os.path.exists(f"{evo_run}/gv")


def test_report_does_not_import_tensorflow(evo_run, tmp_path):
    code = (
        "import sys; from keras_nas import cli; rc = cli.main(['report', sys.argv[1], '--output_dir=' + sys.argv[2]]);"
        "heavy = [m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules];"
        "print('heavy:', heavy); sys.exit(rc or bool(heavy))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, evo_run, str(tmp_path / "r")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert "heavy: []" in p.stdout


# -- a real run --------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_of_a_real_tiny_search(tmp_path, capsys):
    run = tmp_path / "run"
    flags = [
        "--subset=30",
        "--image_size=8",
        "--max_trials=2",
        "--epochs=1",
        "--num_cells=1",
        "--filters=4",
        "--num_blocks=2",
        "--batch_size=32",
        "--population_size=2",
        "--run_eagerly",
        "--seed=1",
        "--notensorboard",
    ]
    assert cli.main(["search", f"--output_dir={run}", *flags]) == 0
    assert cli.main(["report", str(run)]) == 0
    text = (run / "report" / "index.html").read_text()
    assert _sections(text) == set(SECTIONS) | {"population"}
    assert "Every trial completed." in text
    best = json.loads((run / "run.json").read_text())["best"]["architecture"]
    assert html.escape(best) in text
    for name in ("best_so_far.png", "score_vs_cost.png", "population.png", "cells_1.png"):
        _assert_real_png((run / "report" / name).read_bytes())


# -- a real browser ----------------------------------------------------------------------------


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify(imgs.map(i => [i.dataset.file, i.complete, i.naturalWidth, i.naturalHeight]));
  document.body.appendChild(out);
});
</script></body>"""


@pytest.mark.skipif(
    _chromium() is None, reason="no Chromium/Chrome on PATH (make report-deps installs it)"
)
def test_page_renders_in_headless_chromium(evo_run, tmp_path):
    index = write_report(evo_run)
    probe = tmp_path / "probe.html"  # the page plus a script reporting how each image decoded
    probe.write_text(open(index, encoding="utf-8").read().replace("</body>", PROBE))
    base = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    p = subprocess.run(
        base + ["--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=scaled(90)
    )
    m = re.search(r'<pre id="probe">(.*?)</pre>', p.stdout, re.S)
    assert m, p.stderr[-2000:]
    images = json.loads(html.unescape(m.group(1)))
    assert len(images) == 6
    for name, complete, w, h in images:
        assert complete and w > 100 and h > 100, (name, w, h)
    shot = tmp_path / "shot.png"
    subprocess.run(
        base + ["--window-size=1300,1800", f"--screenshot={shot}", f"file://{index}"],
        capture_output=True,
        timeout=scaled(90),
    )
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    # the first plot sits in the top part of the page: its blue best-so-far line must be on screen
    blue = sum(1 for r, g, b in img.getdata() if b > 150 and r < 80 and 90 < g < 150)
    assert blue > 200, "no plot pixels in the screenshot"


# -- results_summary ---------------------------------------------------------------------------


def test_results_summary_shows_genotypes_not_raw_decisions(tmp_path, capsys):
    import keras_tuner as kt

    import keras_nas
    from keras_nas.reporting import ResultsSummaryMixin, summarize_trial

    Tuner = keras_nas.AgingEvolution  # every keras-nas tuner has the hook
    assert issubclass(Tuner, ResultsSummaryMixin)

    hm = keras_nas.NASNetHyperModel((8, 8, 1), 10, num_blocks=2, filters=4)
    tuner = Tuner(
        hm,
        objective=kt.Objective("val_accuracy", "max"),
        max_trials=5,
        population_size=2,
        directory=str(tmp_path),
        project_name="p",
        seed=0,
    )
    oracle = tuner.oracle
    for score in (0.5, 0.7, None):  # trials told to the oracle as a search would, without training
        trial = oracle.create_trial("tuner0")
        if score is None:
            trial.status = kt.engine.trial.TrialStatus.FAILED
            trial.message = (
                "Traceback (most recent call last):\n  ...\nValueError: negative dimension size"
            )
        else:
            oracle.update_trial(trial.trial_id, {"val_accuracy": score})
            trial.status = kt.engine.trial.TrialStatus.COMPLETED
        oracle.end_trial(trial)
    trials = list(oracle.trials.values())
    capsys.readouterr()
    tuner.results_summary(2)
    out = capsys.readouterr().out
    assert out.startswith(
        f"Results summary\nResults in {tuner.project_dir}\nShowing 2 best trials\n"
    )
    best = hm.genotype(trials[1])
    assert f"Trial {trials[1].trial_id} summary\nArchitecture: {best}\nScore: 0.7" in out
    assert out.index("Score: 0.7") < out.index("Score: 0.5")
    assert "normal/b0_in0" not in out  # no raw decisions ...
    tuner.results_summary(1, raw=True)
    raw = capsys.readouterr().out
    assert "Hyperparameters (16):\nnormal/b0_in0: " in raw  # ... unless asked for
    failed = summarize_trial(trials[2], hm)
    assert "Status: FAILED\nReason: ValueError: negative dimension size" in failed
    # without a HyperModel that decodes them, the decisions are listed as keras-tuner does
    plain = summarize_trial(trials[0], None)
    assert "Architecture:" not in plain and "normal/b0_op0: " in plain
