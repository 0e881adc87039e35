"""The import graph stays a map of the architecture (issue #11's "done when").

* the pure layers (space/, blocks/, transfer/, controllers/) never import keras_tuner;
* nothing outside keras_nas/tuning/internals.py imports keras_tuner.src or uses one of the
  private keras-tuner names it lists;
* readers of a run directory (export, cli show) never import a job;
* no import cycles between keras_nas modules; no module over ~600 lines.
"""

import ast
import os
import re

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_nas")
PURE = ("space", "blocks", "transfer", "controllers", "kernels")
MAX_LINES = 620


def _modules():
    out = {}
    for d, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__")] = path
    return out


def _imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


MODULES = _modules()


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_import_no_keras_tuner(layer):
    bad = {
        m: sorted(
            i
            for i in _imports(p)
            if i.split(".")[0] == "keras_tuner" or i.startswith("keras_nas.tuning")
        )
        for m, p in MODULES.items()
        if m.startswith(f"keras_nas.{layer}")
    }
    assert not {m: v for m, v in bad.items() if v}


def test_private_keras_tuner_names_only_in_internals():
    from keras_nas.tuning.internals import PRIVATE_NAMES

    private = sorted({n for owner, names in PRIVATE_NAMES.items() if " " in owner for n in names})
    pattern = re.compile(r"\.(" + "|".join(map(re.escape, private)) + r")\b")
    offenders = {}
    for m, p in MODULES.items():
        if m == "keras_nas.tuning.internals":
            continue
        text = open(p, encoding="utf-8").read()
        hits = set(pattern.findall(text)) | {
            i for i in _imports(p) if i.startswith(("keras_tuner.src", "keras_tuner.engine"))
        }
        if hits:
            offenders[m] = sorted(hits)
    assert not offenders, (
        f"private keras-tuner names outside keras_nas/tuning/internals.py: {offenders}"
    )


def test_run_directory_readers_import_no_job():
    for m in (
        "keras_nas.export",
        "keras_nas.rundir",
        "keras_nas.families",
        "keras_nas.reporting",
        "keras_nas.visualize",
    ):
        jobs = sorted(i for i in _imports(MODULES[m]) if i.startswith("keras_nas.jobs"))
        assert not jobs, (m, jobs)
    show = ast.get_source_segment(
        open(MODULES["keras_nas.cli"]).read(),
        next(
            n
            for n in ast.parse(open(MODULES["keras_nas.cli"]).read()).body
            if isinstance(n, ast.FunctionDef) and n.name == "cmd_show"
        ),
    )
    assert "jobs" not in show


def test_no_import_cycles():
    graph = {m: {i for i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}
    for m in graph:  # a package's __init__ importing its own submodules lazily is not an edge here
        graph[m] = {i for i in graph[m] if not m.startswith(i + ".")}
    state, cycle = {}, []

    def visit(m, stack):
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle.append(stack + [m, n])
            elif n not in state:
                visit(n, stack + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycle, cycle[:3]


def test_no_module_over_600_lines():
    long = {
        m: n
        for m, p in MODULES.items()
        if (n := sum(1 for _ in open(p, encoding="utf-8"))) > MAX_LINES
    }
    assert not long, long
