"""The run directory: what a search or retraining run writes, and reading it back.

Why a module of its own: ``keras-nas search`` / ``train`` write a run directory and
``export``, ``show`` and ``report`` read it; the readers must not import the jobs.

Layout (``--output_dir`` of ``keras-nas search``)::

    run.json               what was run (config, data, build settings) and the result
    best_genotype.json     the winning architecture (keras-nas genotype JSON)
    best_model.keras       the winning search network, weights from its search training
    best_model.weights.h5
    best_cells.png         the winning cells
    results.csv/.json      every trial (see keras_nas.reporting)
    tensorboard/search/    TensorBoard events
    tuner/                 the keras-tuner project: running the same command again resumes it
    final/                 written by ``keras-nas train``

Every file here is written atomically (temp file + rename): a kill leaves the old or the
new file, never a torn one.
"""

from __future__ import annotations

import json
import os

from keras_nas import atomic, families

PROJECT_NAME = "tuner"
RUN_JSON = "run.json"
BEST_GENOTYPE = "best_genotype.json"


class JobError(ValueError):
    """A job cannot run as configured; the message names the setting (flag) and the fix."""


def write_text(path: str, text: str) -> None:
    atomic.write_text(path, text)


def write_json(path: str, obj, indent=1) -> None:
    write_text(path, json.dumps(obj, indent=indent))


def check_output_dir(path: str, flag: str = "--output_dir"):
    """Raise :class:`JobError` unless ``path`` is (or can be made as) a writable directory."""
    if not path or not str(path).strip():
        raise JobError(f"{flag} must not be empty; pass a directory, e.g. {flag}=runs/a.")
    if "\x00" in str(path):
        raise JobError(f"{flag} contains a NUL byte; pass a plain directory path.")
    if os.path.exists(path) and not os.path.isdir(path):
        raise JobError(
            f"{flag} {path!r} is a file, not a directory; pass a directory (new or existing)."
        )
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(
            probe
        )  # the nearest existing ancestor: where the directory would be made
    if not os.path.isdir(probe):
        raise JobError(f"{flag} {path!r} cannot be made: {probe!r} is a file.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise JobError(
            f"{flag} {path!r}: {probe!r} is not writable; pass a directory you can write to."
        )


def read_run(run_dir: str) -> dict:
    """``run.json`` of a run directory ({} when there is none)."""
    path = os.path.join(run_dir, RUN_JSON)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
    except (OSError, ValueError) as e:
        raise JobError(
            f"{path} is unreadable ({e}); restore it from a backup, or start afresh (--overwrite or a "
            "new directory)."
        ) from None
    if not isinstance(run, dict):
        raise JobError(f"{path} does not hold a JSON object (is it a keras-nas run.json?).")
    return run


def load_architecture(spec: str):
    """An architecture from a run directory, a JSON file, a zoo name or a string of any family.

    Strings: NASNet genotype (``normal=...;reduce=...``), NB201 (``|op~0|+...``), macro
    (``24x3s1;36x5s2<0``) or JSON.
    """
    from keras_nas import zoo

    spec = str(spec).strip()
    if os.path.isdir(spec):
        path = os.path.join(spec, BEST_GENOTYPE)
        if not os.path.exists(path):
            raise JobError(
                f"{spec} is a directory without {BEST_GENOTYPE}; is it a keras-nas search output directory?"
            )
        spec = path
    if os.path.isfile(spec):
        with open(spec, encoding="utf-8") as f:
            text = f.read().strip()
    else:
        text = spec
    key = text.lower().replace("-", "_")
    if key in zoo.GENOTYPES:
        return zoo.get(key)
    try:
        arch = families.parse_architecture(text)
    except (
        ValueError,
        KeyError,
        TypeError,
        RecursionError,
    ) as e:  # GenotypeError / SpaceError are ValueErrors
        raise JobError(f"Cannot read architecture {spec[:80]!r}: {e}") from None
    if arch is not None:
        return arch
    raise JobError(
        f"Cannot read architecture {spec[:80]!r}: not a run directory, file, zoo name ({sorted(zoo.GENOTYPES)}), "
        "genotype string ('normal=...;reduce=...'), NB201 string ('|op~0|+...') or macro string ('24x3s1;...')."
    )


def save_model(model, directory: str, stem: str, log) -> dict:
    """``<stem>.weights.h5`` and ``<stem>.keras``, each written to a temp name and renamed."""
    paths = {"weights": os.path.join(directory, f"{stem}.weights.h5")}
    _save_atomic(model.save_weights, paths["weights"])
    try:
        paths["keras"] = os.path.join(directory, f"{stem}.keras")
        _save_atomic(model.save, paths["keras"])
    except Exception as e:  # a custom layer that cannot be serialised: the weights still are
        log(
            f"warning: could not save {stem}.keras ({e}); the weights file and genotype rebuild it."
        )
        paths.pop("keras")
    return paths


def _save_atomic(save, path):
    base, ext = (
        (path[: -len(".weights.h5")], ".weights.h5")
        if path.endswith(".weights.h5")
        else os.path.splitext(path)
    )
    tmp = f"{base}.tmp{os.getpid()}{ext}"  # Keras checks the extension
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
