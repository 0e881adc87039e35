"""The ``keras-nas`` command line: ``search``, ``train``, ``export``, ``show`` (absl flags).

Why absl: TensorFlow training jobs are configured with absl flags and ``--flagfile``; a
search job launched on a cluster reads the same way. Each subcommand has its own
``FlagValues`` so ``keras-nas SUBCOMMAND --help`` lists exactly its flags, and a wrong flag
or value fails before anything heavy is imported, with a message naming the flag. The flags
themselves are defined in :mod:`keras_nas.cli_flags`, the checks made while parsing in
:mod:`keras_nas.cli_checks`; this module parses, prints help and runs the subcommand.

Usage::

    keras-nas search --output_dir=runs/a [--space=nasnet --controller=evolution --data=digits ...]
    keras-nas search --flagfile=search.cfg
    keras-nas train  --run_dir=runs/a --epochs=30 --num_cells=2 --filters=16
    keras-nas export --run_dir=runs/a
    keras-nas show   runs/a | genotype.json | nasnet_a | 'normal=...;reduce=...'
    keras-nas report runs/a              # runs/a/report/index.html
"""

from __future__ import annotations

import os
import sys
import warnings

from absl import flags

from keras_nas import cli_checks, cli_flags
from keras_nas.report import command as report_command  # light: absl only

PROG = "keras-nas"
SUBCOMMANDS = ("search", "train", "export", "show", "report")
SUMMARY = {
    "search": "search architectures (keras-tuner project; running the same command again resumes)",
    "train": "retrain the best (or a given) architecture at final size and save it",
    "export": "export a trained model: .keras, SavedModel, genotype JSON, standalone Python builder",
    "show": "print an architecture and draw its cells as PNG",
    "report": report_command.SUMMARY,
}
FLAG_FACTORIES = {
    "search": cli_flags.search_flags,
    "train": cli_flags.train_flags,
    "export": cli_flags.export_flags,
    "show": cli_flags.show_flags,
    "report": report_command.define_flags,
}
POSITIONAL = {"show": "GENOTYPE_OR_RUN", "report": report_command.POSITIONAL}


def usage() -> str:
    lines = [
        f"usage: {PROG} SUBCOMMAND [--flags] (--flagfile=FILE reads flags from a file)",
        "",
        "subcommands:",
    ]
    lines += [f"  {k:8s} {v}" for k, v in SUMMARY.items()]
    lines += ["", f"`{PROG} SUBCOMMAND --help` lists the flags of a subcommand."]
    return "\n".join(lines)


def help_text(sub: str, fv: flags.FlagValues) -> str:
    pos = f" {POSITIONAL[sub]}" if sub in POSITIONAL else ""
    head = f"usage: {PROG} {sub}{pos} [--flags]\n\n{SUMMARY[sub]}.\n"
    if sub == "show":
        head += (
            "\nGENOTYPE_OR_RUN: a genotype string, a JSON file, a zoo name (nasnet_a, amoebanet_a, darts_v2, enas),\n"
            "an NB201 or macro architecture string, or a search output directory.\n"
        )
    # get_help groups flags under their defining module's path; the heading is noise here.
    body = "\n".join(
        l
        for l in fv.get_help(include_special_flags=False).splitlines()
        if l.startswith(" ") or not l.rstrip().endswith(":")
    ).strip("\n")
    return (
        f"{head}\nflags:\n{body}\n  --flagfile: read flags from FILE (one --flag=value per line).\n"
    )


class UsageError(Exception):
    pass


def parse(argv):
    """``argv`` (without the program name) -> (subcommand, FlagValues, positional args)."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        raise SystemExit(print(usage()) or 0)
    sub, rest = argv[0], list(argv[1:])
    if sub not in FLAG_FACTORIES:
        raise UsageError(
            f"unknown subcommand {sub!r}; choose one of {', '.join(SUBCOMMANDS)}.\n\n{usage()}"
        )
    fv = FLAG_FACTORIES[sub]()
    cli_checks.add_checks(fv)  # upper bounds, finite floats, no NUL bytes: checked while parsing
    if any(a in ("-h", "--help", "-help", "--helpfull", "--helpshort") for a in rest):
        raise SystemExit(print(help_text(sub, fv)) or 0)
    try:
        remaining = fv([f"{PROG} {sub}"] + rest)
    except flags.Error as e:
        raise UsageError(f"{e}\nSee `{PROG} {sub} --help`.") from None
    positional = remaining[1:]
    dashed = [a for a in positional if a.startswith("-")]
    if dashed:
        raise UsageError(f"unknown flag {dashed[0]!r}. See `{PROG} {sub} --help`.")
    want = 1 if sub in POSITIONAL else 0
    if len(positional) != want:
        if want:
            raise UsageError(
                f"`{PROG} {sub}` needs exactly one {POSITIONAL[sub]} argument, got {len(positional)}."
            )
        raise UsageError(
            f"`{PROG} {sub}` takes no positional arguments, got {positional!r}. Flags are written --name=value."
        )
    return sub, fv, positional


def _log(msg: str):
    print(msg, flush=True)


def _quiet():
    """Keep TensorFlow/Keras chatter off the progress lines (before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for pattern in (
        ".*shuffle=True.*",
        ".*ran out of data.*",
        ".*Gradients do not exist.*",
        ".*Skipping variable loading.*",
        ".*does not have a `build_config`.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.WARNING)
    except Exception:  # pragma: no cover
        pass
    from keras_nas import quiet

    quiet.filter_tensorflow_import_logs()


def _config(cls, fv):
    import dataclasses

    return cls(**{f.name: fv[f.name].value for f in dataclasses.fields(cls)})


def cmd_search(fv, _):
    from keras_nas.jobs import search

    summary = search.run_search(_config(search.SearchConfig, fv), log=_log)
    _log(search.search_summary_text(summary))


def cmd_train(fv, _):
    from keras_nas.jobs import train

    cfg = _config(train.TrainConfig, fv)
    r = train.run_train(cfg, log=_log)
    out = os.path.dirname(r["files"]["weights"])
    _log(
        f"\n== trained {r['space']} architecture in {r['seconds']:.0f}s: {r['params']:,} params, "
        f"validation accuracy {r['val_accuracy']:.4f}, held-out test accuracy {r['test_accuracy']:.4f}, "
        f"augmentation: {', '.join(r['augment']) or 'none'} =="
    )
    _log(
        "written:\n"
        + "\n".join(f"  {k:9s} {v}" for k, v in r["files"].items())
        + f"\n  train.json {os.path.join(out, 'train.json')}"
    )
    from keras_nas.jobs.advice import command

    _log(
        f"next:\n  {command()} export --run_dir={cfg.run_dir}"
        + (f" --model_dir={out}" if cfg.output_dir else "")
    )


def cmd_export(fv, _):
    from keras_nas import export

    r = export.export_run(
        fv.run_dir,
        model_dir=fv.model_dir or None,
        export_dir=fv.export_dir or None,
        saved_model=fv.saved_model,
        log=_log,
    )
    _log(
        f"\n== exported ({r['params']:,} params) ==\n{r['architecture']}"
    )  # the whole genotype, never cut
    _log("\n".join(f"  {k:13s} {v}" for k, v in r["files"].items()))
    _log(f"rebuild without keras-nas:  python {r['files']['python']} {r['files']['weights']}")


def cmd_show(fv, positional):
    from keras_nas import rundir, visualize

    spec = positional[0]
    arch = rundir.load_architecture(spec)
    _log(visualize.architecture_text(arch))
    if fv.text_only:
        return
    png = fv.png or (os.path.join(spec, "cells.png") if os.path.isdir(spec) else "cells.png")
    try:
        visualize.save_png(arch, png)
    except ImportError as e:
        raise UsageError(f"{e} Use --text_only to skip the picture.") from None
    except OSError as e:
        raise UsageError(
            f"cannot write the picture {png!r} ({e.strerror or e}); pass --png=PATH in a writable "
            "directory, or --text_only."
        ) from None
    _log(f"picture: {png}")


COMMANDS = {"search": cmd_search, "train": cmd_train, "export": cmd_export, "show": cmd_show}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        sub, fv, positional = parse(argv)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    if sub == "report":  # reads files only: answers before TensorFlow would be imported below
        return report_command.main(fv, positional, PROG)
    _quiet()
    try:
        cli_checks.precheck(sub, fv, positional)  # bad input fails before TensorFlow is imported
        COMMANDS[sub](fv, positional)
    except UsageError as e:
        print(f"{PROG} {sub}: error: {e}", file=sys.stderr)
        return 2
    except cli_checks.known_errors() as e:  # evaluated only when something was raised
        print(f"{PROG} {sub}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"\n{PROG} {sub}: interrupted; run the same command again to resume.", file=sys.stderr
        )
        return 130
    return 0


def run():
    """Console-script entry point (``keras-nas``)."""
    sys.exit(main())


if __name__ == "__main__":
    run()
