"""Every ```python block of README.md runs as written (the walkthrough cannot rot)."""

import os
import re

import pytest

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _snippets():
    text = open(DOC, encoding="utf-8").read()
    blocks = re.findall(r"^### (.+?)\n.*?^```python\n(.*?)^```", text, flags=re.S | re.M)
    return [(title.strip(), code) for title, code in blocks]


SNIPPETS = _snippets()


def test_the_walkthrough_has_the_four_snippets():
    titles = [t for t, _ in SNIPPETS]
    assert len(SNIPPETS) == 4, titles
    codes = "\n".join(c for _, c in SNIPPETS)
    assert "keras_nas.AgingEvolution(build" in codes and "kt.RandomSearch" in codes
    assert "keras_nas.NASNetHyperModel(" in codes
    assert "keras_nas.build_network(genotype" in codes
    assert "Cell(g.normal" in codes


@pytest.mark.parametrize("title, code", SNIPPETS, ids=[t for t, _ in SNIPPETS])
def test_snippet_runs(title, code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        "tempfile.tempdir", str(tmp_path)
    )  # tuners' work directories go to tmp_path
    namespace = {"__name__": "__snippet__"}
    exec(compile(code, f"README.md: {title}", "exec"), namespace)
    out = capsys.readouterr().out
    assert out.strip(), "every snippet prints its result"
    if "build_network" in code or "Cell(" in code:
        assert int(out.strip().splitlines()[-1]) > 1000  # a parameter count
    if "NASNetHyperModel" in code:
        import keras_nas

        assert isinstance(namespace["best"], keras_nas.Genotype)
        assert namespace["best"].normal.num_blocks == 2
