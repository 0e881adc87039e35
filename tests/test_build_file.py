"""The Bazel BUILD file stays in step with the modules and tests.

BUILD is Starlark, which for these rules is valid Python: it is evaluated with stub
rule functions and its targets compared with the files on disk.
"""

import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_build():
    targets = {}

    def rule(kind):
        def add(name, srcs=(), deps=(), **kwargs):
            assert name not in targets, f"duplicate BUILD target {name}"
            targets[name] = {"kind": kind, "srcs": list(srcs), "deps": list(deps), **kwargs}

        return add

    def glob(patterns, exclude=()):
        out = []
        for pattern in patterns:
            for p in ROOT.glob(pattern):
                rel = p.relative_to(ROOT).as_posix()
                if p.is_file() and not any(fnmatch.fnmatch(rel, e) for e in exclude):
                    out.append(rel)
        return sorted(out)

    env = {
        "load": lambda *a, **k: None,
        "py_library": rule("py_library"),
        "py_test": rule("py_test"),
        "py_binary": rule("py_binary"),
        "glob": glob,
        "requirement": lambda name: f"@pypi//{name}",
        "package": lambda **k: None,
        "exports_files": lambda *a, **k: None,
        "filegroup": rule("filegroup"),
    }
    exec(compile((ROOT / "BUILD").read_text(), "BUILD", "exec"), env)
    return targets


def test_every_module_is_in_a_py_library():
    targets = _load_build()
    covered = {s for t in targets.values() if t["kind"] == "py_library" for s in t["srcs"]}
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "keras_nas").rglob("*.py")}
    missing = sorted(modules - covered)
    assert not missing, f"add these modules to a py_library in BUILD: {missing}"
    stale = sorted(s for s in covered if not (ROOT / s).exists())
    assert not stale, f"BUILD lists files that do not exist: {stale}"


def test_every_test_file_has_a_py_test():
    targets = _load_build()
    tested = {
        s
        for t in targets.values()
        if t["kind"] == "py_test"
        for s in t["srcs"]
        if s.startswith("tests/test_")
    }
    for name, t in targets.items():
        if t["kind"] == "py_test":
            own = [s for s in t["srcs"] if s.startswith("tests/test_")]
            assert own and t.get("args") == [f"$(location {own[0]})"], (
                f"{name} must run pytest on its own file"
            )
    tests = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("test_*.py")}
    assert tests - tested == set(), f"add py_test targets for: {sorted(tests - tested)}"
    assert tested - tests == set(), f"BUILD has py_test for missing files: {sorted(tested - tests)}"


def test_deps_name_existing_targets():
    targets = _load_build()
    for name, t in targets.items():
        for dep in t["deps"]:
            if dep.startswith(":"):
                assert dep[1:] in targets, f"{name} depends on unknown target {dep}"
