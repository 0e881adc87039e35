"""The jobs behind ``keras-nas search`` / ``train`` and ``make demo``: entered from the CLI, the
demo or a notebook, never imported by library modules (they read run directories through
:mod:`keras_nas.rundir` and architectures through :mod:`keras_nas.families`)."""
