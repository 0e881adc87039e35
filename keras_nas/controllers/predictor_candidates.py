"""Candidate generation of :class:`~keras_nas.controllers.predictor.PredictorController` (step 3 of
its loop): one-edit neighbours of the best trials, mutations of the best parents (two edits with
``two_edit_prob``), a random share, and the widening when the search stalls. A mixin so that the
predictor module stays about fitting and acquisition; it reads the controller's settings and
history and changes nothing but its RNG."""

from __future__ import annotations


class CandidateMixin:
    """``_candidates(space)`` and its helpers, for PredictorController."""

    def _candidates(self, space) -> list:
        seen = self._seen_keys()
        ranked = sorted(self._ok, key=lambda h: -h["reward"])
        k = min(self.num_parents, len(ranked))
        simple = not any(
            p.conditions for p in space.params
        )  # no conditional params: mutate in place
        parents = [space.complete(h["values"], self.sample_value) for h in ranked[:k]]
        mutable = [p for p in space.params if p.continuous or len(p.options) > 1]
        g = self._stall_factor()
        num_candidates = self.num_candidates
        two_edit_prob = min(1.0, self.two_edit_prob * g)
        n_random = int(round(num_candidates * min(0.5, self.random_fraction * g)))
        n_mut = num_candidates - n_random
        out, keys = [], set()
        enc = self._encoding(space)
        equiv = self._equiv_seen(enc)
        if (
            equiv is not None
        ):  # a candidate equivalent to a seen one (or to another candidate) teaches nothing
            equiv = set(equiv)

        def add(v):
            key = self._key(v)
            if key in seen or key in keys:
                return False
            if equiv is not None:
                ekey = enc.equivalence_key(v)
                if ekey in equiv:
                    return False
                equiv.add(ekey)
            keys.add(key)
            out.append(v)
            return True

        # Every one-edit neighbour of the best ``local_top`` trials (categorical decisions).
        for h in ranked[: self.local_top]:
            base = space.complete(h["values"], self.sample_value)
            for p in mutable:
                if p.continuous or p.name not in base or len(out) >= n_mut:
                    continue
                for o in p.options:
                    if o != base[p.name]:
                        child = dict(base)
                        child[p.name] = o
                        add(child if simple else space.complete(child, self.sample_value))
        misses = 0
        while len(out) < n_mut and parents and mutable:
            child = self._mutate(parents[self.rng.randrange(len(parents))], space, mutable, simple)
            if self.rng.random() < two_edit_prob:
                child = self._mutate(child, space, mutable, simple)
            if add(child):
                continue
            misses += 1
            if misses >= n_mut:  # the best parents' neighbourhoods are (nearly) exhausted: widen
                if k >= len(ranked):
                    break
                k2 = min(2 * k, len(ranked))
                parents += [space.complete(h["values"], self.sample_value) for h in ranked[k:k2]]
                k, misses = k2, 0
        tries = 0
        while len(out) < n_mut + n_random and tries < 4 * (n_random + 1):
            tries += 1
            add(self.random_values(space))
        return out

    def _stall_factor(self) -> int:
        """1, or g = 1 + (results since the best one) // ``stall_patience`` (at most 4): the
        candidates' random share and two-edit probability are multiplied by g (capped at 0.5 / 1)."""
        if not self.stall_patience or not self._ok:
            return 1
        best = max(range(len(self._ok)), key=lambda j: self._ok[j]["reward"])
        stall = len(self._ok) - 1 - best
        return 1 + min(3, stall // self.stall_patience)

    def _mutate(self, values, space, mutable, simple):
        """``values`` with one decision (active in it) changed to a different value."""
        active = [p for p in mutable if p.name in values]
        if not active:
            return dict(values)
        p = active[self.rng.randrange(len(active))]
        child = dict(values)
        child[p.name] = p.mutated(values[p.name], self.rng, self.sigma)
        return child if simple else space.complete(child, self.sample_value)
