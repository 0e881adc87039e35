"""From a trial's score and cost to the controller's reward, and the (score, cost) Pareto front.

Why a module of its own: reward shaping (objective direction, MnasNet's latency/size
penalty, a user transform) and the Pareto front are algorithm, not keras-tuner
bookkeeping; benchmarks and any ask/tell driver use them without keras-tuner.
"""

from __future__ import annotations

import math
from typing import Callable, Optional


class RewardShaper:
    """``reward(score, cost)``: larger is better, None for a trial that must not be a parent.

    Args:
      direction: ``"max"`` or ``"min"`` (the objective's).
      cost_target: T; with a cost, reward = score * (cost / T) ** w (MnasNet). ``None``: the
        cost only feeds the Pareto front.
      cost_weight: w (< 0). A float (MnasNet soft constraint: -0.07) or a pair
        ``(alpha, beta)`` used below/above the target (hard constraint: ``(0, -1)``).
      transform: ``f(reward) -> float`` applied last (e.g. ``lambda r: r ** 3``).
    """

    def __init__(
        self,
        direction: str = "max",
        cost_target: Optional[float] = None,
        cost_weight=-0.07,
        transform: Optional[Callable[[float], float]] = None,
    ):
        if cost_target is not None and not cost_target > 0:
            raise ValueError(f"cost_target must be positive, got {cost_target!r}.")
        if isinstance(cost_weight, (tuple, list)):
            if len(cost_weight) != 2:
                raise ValueError(
                    f"cost_weight must be a float or a pair (alpha, beta), got {cost_weight!r}."
                )
            self.cost_weight = (float(cost_weight[0]), float(cost_weight[1]))
        else:
            self.cost_weight = (float(cost_weight), float(cost_weight))
        self.direction = direction or "max"
        self.cost_target = cost_target
        self.transform = transform

    @property
    def maximize(self) -> bool:
        return self.direction == "max"

    def reward(self, score, cost: Optional[float] = None) -> Optional[float]:
        if score is None:
            return None
        score = float(score)
        if not math.isfinite(score):
            return None
        if cost is not None and self.cost_target is not None:
            ratio = cost / self.cost_target
            w = self.cost_weight[0] if cost <= self.cost_target else self.cost_weight[1]
            # MnasNet: acc * (cost/T)^w with w <= 0. For a 'min' objective (a loss) the
            # penalty multiplies the loss by (cost/T)^-w instead, then the sign flips.
            reward = score * ratio**w if self.maximize else -(score * ratio ** (-w))
        else:
            reward = score if self.maximize else -score
        if self.transform is not None:
            reward = float(self.transform(reward))
        return reward if math.isfinite(reward) else None


class ParetoFront:
    """Non-dominated (score, cost) points: better objective, lower cost, sorted by cost."""

    def __init__(self, direction: str = "max", points=()):
        self.sign = 1.0 if (direction or "max") == "max" else -1.0
        self.points = [dict(q) for q in points]

    def add(self, trial_id, score: float, cost: float, reward) -> bool:
        """Add a point; False when an existing point dominates (or equals) it."""
        s = self.sign * score
        for q in self.points:
            if self.sign * q["score"] >= s and q["cost"] <= cost:
                return False
        self.points = [
            q for q in self.points if not (s >= self.sign * q["score"] and cost <= q["cost"])
        ]
        self.points.append({"trial_id": trial_id, "score": score, "cost": cost, "reward": reward})
        self.points.sort(key=lambda q: (q["cost"], -self.sign * q["score"]))
        return True

    def to_list(self) -> list:
        return [dict(q) for q in self.points]
