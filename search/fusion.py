"""Fusing rankings into one: the image-text models' rankings of a query ([clip] and [[models]]),
and those with the words found in on-screen text and speech.

- Reciprocal rank fusion (Cormack et al., 2009), the default: score = sum over rankings of
  weight / (RRF_K + rank). Ranks only: models whose cosine similarities live on different scales
  (a SigLIP beside a CLIP) fuse without calibration, and a keyframe that several rankings place
  high beats one that a single ranking places first.
- Weighted normalised scores (`[search] fusion = "score"`): each model's similarities min-max
  normalised over its own list, then summed with the weights; a keyframe a model did not list
  adds 0 for it. Lets a user lean on one model's confidence, not only its order.
Words are always fused by rank: BM25 and cosine scores do not compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evr.storage.rules import one_of, rule

RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al., 2009)
FUSIONS = ("rrf", "score")

Ranked = list[tuple[int, float]]  # (keyframe id, score), best first


MAX_WEIGHT = 1e6  # beyond any sensible lean on one model; sums of weights stay far from overflow


def _weights(values: dict) -> str | None:
    bad = {
        k: v
        for k, v in values.items()
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= MAX_WEIGHT
    }  # NaN fails too
    return f"must map model names to finite weights from 0 to {MAX_WEIGHT:g}, not {str(bad)[:80]}" if bad else None


@dataclass(frozen=True)
class FusionSettings:
    """[search]: how the models' rankings become one."""

    fusion: str = rule(one_of(FUSIONS), default="rrf")  # rrf (reciprocal rank) | score (weighted normalised scores)
    # A model's weight in the fusion, by name ("clip" = [clip]'s, else its [[models]] name); 1 when absent.
    weights: dict = rule(_weights, default_factory=dict)

    def weight(self, model: str) -> float:
        return float(self.weights.get(model, 1.0))


@dataclass
class Fused:
    """A fused ranking, and for each keyframe which rankings held it, at what rank and score."""

    ranked: Ranked
    found_by: dict[int, dict[str, tuple[int, float]]] = field(default_factory=dict)  # id -> name -> (rank, score)

    def match(self, kid: int) -> str:
        """The names of the rankings that hold it, joined by "+" ("clip+speech")."""
        return "+".join(self.found_by.get(kid, {}))


def fuse(rankings: dict[str, Ranked], how: str = "rrf", weights: dict[str, float] | None = None) -> Fused:
    """The rankings that found anything, fused (`how`: "rrf" or "score"); one alone is kept as
    it is, its own scores and order."""
    found = {name: ranked for name, ranked in rankings.items() if ranked}
    by: dict[int, dict[str, tuple[int, float]]] = {}
    for name, ranked in found.items():
        for rank, (kid, score) in enumerate(ranked, start=1):
            by.setdefault(kid, {})[name] = (rank, score)
    if len(found) < 2:
        return Fused(next(iter(found.values()), []), by)
    weights = weights or {}
    fused: dict[int, float] = {}
    for name, ranked in found.items():
        w = weights.get(name, 1.0)
        if how == "score":
            scores = [score for _, score in ranked]
            low, span = min(scores), max(scores) - min(scores)
            for kid, score in ranked:
                fused[kid] = fused.get(kid, 0.0) + w * ((score - low) / span if span > 0 else 1.0)
        else:
            for rank, (kid, _) in enumerate(ranked, start=1):
                fused[kid] = fused.get(kid, 0.0) + w / (RRF_K + rank)
    return Fused(sorted(fused.items(), key=lambda item: (-item[1], item[0])), by)
