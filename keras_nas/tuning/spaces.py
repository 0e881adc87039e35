"""keras-tuner ``HyperParameters`` -> the controllers' :class:`ParamSpace` (decision list)."""

from __future__ import annotations

from typing import Mapping

from keras_nas.controllers.params import MAX_OPTIONS, Param, ParamSpace, plain, tidy_step_value
from keras_nas.space.base import KIND_GENERIC
from keras_nas.tuning import internals


def param_space_from_hyperparameters(hps, kinds: Mapping[str, str] | None = None) -> ParamSpace:
    """Convert a keras-tuner ``HyperParameters``. ``kinds`` maps names to decision kinds
    (keras-nas's cell HyperModels give their spaces' input/op kinds)."""
    hp_module = internals.HP
    kinds = dict(kinds or {})
    params = []
    for hp in hps.space:
        conds = tuple(getattr(hp, "conditions", ()) or ())
        kind = kinds.get(hp.name, KIND_GENERIC)
        if isinstance(hp, hp_module.Fixed):
            options = (plain(hp.value),)
        elif isinstance(hp, (hp_module.Choice, hp_module.Boolean)):
            options = tuple(plain(v) for v in hp.values)
        elif isinstance(hp, (hp_module.Int, hp_module.Float)):
            if getattr(hp, "step", None) is None and isinstance(hp, hp_module.Float):
                options = None
            else:
                n = (
                    internals.stepped_count(hp)
                    if getattr(hp, "step", None) is not None
                    else int(hp.max_value - hp.min_value + 1)
                )
                # kt gives log-Int values as floats, stepped Floats as min + i * step (0.30000000000000004)
                cast = (
                    int
                    if isinstance(hp, hp_module.Int)
                    else (lambda v, hp=hp: tidy_step_value(hp, plain(v)))
                )
                options = (
                    tuple(dict.fromkeys(cast(plain(v)) for v in hp.values))
                    if n <= MAX_OPTIONS
                    else None
                )
        else:  # an unknown HyperParameter subclass: fall back to its prob mapping
            options = None
        params.append(Param(hp.name, options, kind, conds, hp))
    return ParamSpace(params)
