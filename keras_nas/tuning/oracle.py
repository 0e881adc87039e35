"""keras-tuner Oracles for each keras-nas search algorithm (aging evolution, REINFORCE,
predictor-guided, random) and the handling of their keyword arguments.

Each is a :class:`~keras_nas.tuning.controller_oracle.ControllerOracle` whose ``make_controller``
builds its controller. Why two modules: the machinery all oracles share (proposals, duplicates,
rewards, state files, liveness, early stopping) lives there; a new algorithm is added here (a
subclass, its defaults, which keyword arguments go to its controller) without touching it.
:class:`ControllerOracle` and the state classes are re-exported here, the import path of earlier
releases.
"""

from __future__ import annotations

import inspect

from keras_nas.controllers.base import RandomController
from keras_nas.tuning.controller_oracle import ControllerOracle
from keras_nas.tuning.state import AtomicFiles, PersistentOracle, StateFileError  # noqa: F401 (re-export)


def oracle_options() -> tuple:
    """Names of :class:`ControllerOracle`'s keyword-only options (read from its signature)."""
    params = inspect.signature(ControllerOracle.__init__).parameters.values()
    return tuple(p.name for p in params if p.kind == p.KEYWORD_ONLY and p.name != "controller")


# -- concrete oracles ------------------------------------------------------------------------
def default_population_size(max_trials) -> int:
    """P for a budget of ``max_trials``: ``clip(max(max_trials // 5, min(max_trials // 2, 15)), 2, 100)``.

    Measured on NAS-Bench-201 at 10-100 trials (benchmarks/README.md, small_budget_evolution): a
    small population forgets its best members (P=2 was worse than random search at every budget), so
    small budgets get about half the trials as population, at most 15; from 75 trials on it is the
    paper's ``max_trials // 5`` (P=100 for >= 500 trials). 10 -> 5, 20 -> 10, 30 -> 15, 50 -> 15,
    100 -> 20.
    """
    if not max_trials:
        return 100
    return int(min(100, max(2, max_trials // 5, min(max_trials // 2, 15))))


# Up to this budget S = P // 2 was measured best (stronger selection); above it the paper's S = P / 4.
HALF_SAMPLE_MAX_TRIALS = 100


def default_sample_size(population_size: int, max_trials=None) -> int:
    """S: ``P // 2`` for budgets up to 100 trials (measured best at 10-100 trials on NAS-Bench-201),
    else the paper's ``ceil(P / 4)`` (25 for P=100); at least 2."""
    if max_trials and max_trials <= HALF_SAMPLE_MAX_TRIALS:
        return int(max(2, population_size // 2))
    return int(max(2, -(-population_size // 4)))


class AgingEvolutionOracle(ControllerOracle):
    """Aging (regularized) evolution, Real et al. 2019, as a keras-tuner Oracle.

    Keyword-only: ``population_size``/``sample_size`` (default :func:`default_population_size`
    of ``max_trials`` and ``ceil(P / 4)``), ``warm_start`` (value dicts or genotypes, with
    ``encoder=`` or a keras-nas HyperModel's tuner), ``identity_prob``, ``sigma``; the rest
    as :class:`ControllerOracle`.
    """

    def __init__(
        self,
        objective=None,
        max_trials=10,
        seed=None,
        hyperparameters=None,
        allow_new_entries=True,
        tune_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        *,
        population_size=None,
        sample_size=None,
        warm_start=None,
        identity_prob=None,
        sigma=0.1,
        **kwargs,
    ):
        self.population_size = population_size or default_population_size(max_trials)
        self.sample_size = sample_size or default_sample_size(self.population_size, max_trials)
        self._evo_kwargs = dict(warm_start=warm_start, identity_prob=identity_prob, sigma=sigma)
        _reject_unknown(type(self), kwargs)
        super().__init__(
            objective,
            max_trials,
            seed,
            hyperparameters,
            allow_new_entries,
            tune_new_entries,
            max_retries_per_trial,
            max_consecutive_failed_trials,
            **kwargs,
        )

    def make_controller(self):
        from keras_nas.controllers.evolution import AgingEvolutionController

        return AgingEvolutionController(
            self.population_size, self.sample_size, seed=self.seed, **self._evo_kwargs
        )

    @property
    def population(self) -> list:
        """Current population (oldest first): ``[{"values", "reward", "age"}]``."""
        return [dict(m) for m in self.controller.population]


class _ForwardingOracle(ControllerOracle):
    """An oracle whose keyword arguments that are not :class:`ControllerOracle` options go to
    its controller's constructor (unknown ones are refused, naming both sets of valid names).

    Subclasses name the controller (:meth:`controller_class`) and the oracle options the
    controller keeps for itself (``kept_options``).
    """

    kept_options: frozenset = frozenset()

    @classmethod
    def controller_class(cls):
        raise NotImplementedError

    def __init__(
        self,
        objective=None,
        max_trials=10,
        seed=None,
        hyperparameters=None,
        allow_new_entries=True,
        tune_new_entries=True,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=3,
        **kwargs,
    ):
        options = set(oracle_options()) - self.kept_options
        oracle_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in options}
        _reject_unknown(type(self), kwargs, extra=_keyword_names(self.controller_class().__init__))
        self._controller_kwargs = kwargs
        super().__init__(
            objective,
            max_trials,
            seed,
            hyperparameters,
            allow_new_entries,
            tune_new_entries,
            max_retries_per_trial,
            max_consecutive_failed_trials,
            **oracle_kwargs,
        )

    def make_controller(self):
        return self.controller_class()(seed=self.seed, **self._controller_kwargs)


class ReinforceOracle(_ForwardingOracle):
    """REINFORCE (policy-gradient) controller as a keras-tuner Oracle.

    Keyword arguments that are not :class:`ControllerOracle` options go to
    ``keras_nas.controllers.reinforce.ReinforceController`` (``reward_transform`` included:
    the controller applies it, and takes ``"cube"``).
    """

    kept_options = frozenset({"reward_transform"})

    @classmethod
    def controller_class(cls):
        from keras_nas.controllers.reinforce import ReinforceController

        return ReinforceController


class PredictorOracle(_ForwardingOracle):
    """Predictor-guided (BANANAS-style) search as a keras-tuner Oracle.

    Keyword arguments that are not :class:`ControllerOracle` options go to
    :class:`~keras_nas.controllers.predictor.PredictorController` (``num_initial``, ``predictor``,
    ``acquisition``, ``num_candidates``, ``encoding``, ``warm_start`` ...).
    """

    @classmethod
    def controller_class(cls):
        from keras_nas.controllers.predictor import PredictorController

        return PredictorController


class RandomOracle(ControllerOracle):
    """Uniform random search through the same code path (baseline for benchmarks)."""

    def make_controller(self):
        return RandomController(seed=self.seed)


def _keyword_names(fn) -> set:
    return {
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.name not in ("self", "seed") and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


class UnknownArgumentError(TypeError, ValueError):
    """An unknown keyword argument: a TypeError as Python raises, and a ValueError as keras-tuner's
    tuners raise ("Unrecognized arguments"), so code catching either keeps working."""


def unknown_arguments(cls, unknown, valid) -> UnknownArgumentError:
    names = ", ".join(repr(k) for k in unknown)
    what = "an unexpected keyword argument" if len(unknown) == 1 else "unexpected keyword arguments"
    return UnknownArgumentError(
        f"{cls.__name__}() got {what} {names} (Unrecognized arguments {list(unknown)}); "
        f"valid keyword arguments: {', '.join(sorted(valid))}."
    )


def _reject_unknown(cls, kwargs, extra=()) -> None:
    """Unknown keyword arguments name the class the user called and list the valid ones."""
    valid = set(oracle_options()) | set(extra)
    unknown = sorted(k for k in kwargs if k not in valid)
    if unknown:
        raise unknown_arguments(cls, unknown, (_keyword_names(cls.__init__) - {"kwargs"}) | valid)
