"""The statistics of SPEC §8: conversion rates, lift with its p-value, and experiments' p_best.

Pure and deterministic, with the standard library only (no numpy or scipy in the Lambda
package): the numbers the stats endpoint shows and the experiment decision reads come
from here.

- `p_value`: the two-sided p-value of the pooled two-proportion z-test, from `math.erfc`
  (exact to double precision far into the tails, where `1 - cdf` would round to 0).
- `p_best`: the probability that each branch has the highest rate under independent
  Beta(1 + hits, 1 + size - hits) posteriors (uniform priors). Computed by numerical
  integration, P(i best) = ∫ f_i(x) · Π_{j≠i} F_j(x) dx, with composite Simpson's rule
  over the bulk of branch i's posterior (its mean ± 20 standard deviations, within
  [0, 1]) and each F_j the regularized incomplete beta function (Lentz's continued
  fraction). Chosen over Monte Carlo because it gives the same answer on every run (a
  decision must not flip on a re-run) and over the closed forms because those are only
  practical for two branches (they grow as nested sums over the counts for three or four).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_SIMPSON_INTERVALS = 512  # even; a window of 40 standard deviations, 0.08 sd apart
_WINDOW_SDS = 20.0
_CF_EPSILON = 1e-15
_CF_MAX_TERMS = 100_000
_TINY = 1e-300


@dataclass(frozen=True, slots=True)
class Proportion:
    """`hits` out of `size`: conversions of the profiles that entered, opens of those sent…"""

    hits: int
    size: int

    def __post_init__(self) -> None:
        if not 0 <= self.hits <= self.size:
            raise ValueError(f"hits {self.hits} must be between 0 and size {self.size}")

    @property
    def rate(self) -> float | None:
        """hits / size; None when the size is 0."""
        return self.hits / self.size if self.size else None


def lift(treatment: Proportion, control: Proportion) -> float | None:
    """Treatment rate over control rate, minus one; None when the control rate is 0 or unknown."""
    treated, controlled = treatment.rate, control.rate
    if treated is None or not controlled:
        return None
    return treated / controlled - 1


def p_value(first: Proportion, second: Proportion) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test; None when a group is empty.

    With no variance at all (both groups all hits, or all misses) the rates are equal: 1.
    """
    if first.size == 0 or second.size == 0:
        return None
    pooled = (first.hits + second.hits) / (first.size + second.size)
    variance = pooled * (1 - pooled) * (1 / first.size + 1 / second.size)
    if variance <= 0:
        return 1.0
    z = (first.hits / first.size - second.hits / second.size) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


def p_best(branches: Sequence[Proportion]) -> list[float]:
    """The probability that each branch's true rate is the highest (Beta posteriors).

    The values sum to 1; identical branches get equal shares.
    """
    posteriors = [_Beta(1 + b.hits, 1 + b.size - b.hits) for b in branches]
    if len(posteriors) < 2:
        return [1.0] * len(posteriors)
    shares = [
        _chance_best(own, posteriors[:index] + posteriors[index + 1 :])
        for index, own in enumerate(posteriors)
    ]
    total = sum(shares)
    return [share / total for share in shares]


def _chance_best(own: _Beta, others: Sequence[_Beta]) -> float:
    """∫ f_own(x) · Π F_other(x) dx over the bulk of `own`, by composite Simpson's rule."""
    spread = _WINDOW_SDS * own.sd
    low, high = max(0.0, own.mean - spread), min(1.0, own.mean + spread)
    step = (high - low) / _SIMPSON_INTERVALS
    total = 0.0
    for i in range(_SIMPSON_INTERVALS + 1):
        weight = 1 if i in (0, _SIMPSON_INTERVALS) else 4 if i % 2 else 2
        x = low + i * step
        value = own.density(x)
        for other in others:
            if value == 0.0:
                break
            value *= other.cdf(x)
        total += weight * value
    return total * step / 3


class _Beta:
    """A Beta(a, b) distribution with a, b ≥ 1: its density and distribution function."""

    __slots__ = ("a", "b", "log_norm", "mean", "sd")

    def __init__(self, a: float, b: float) -> None:
        self.a, self.b = a, b
        self.log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        self.mean = a / (a + b)
        self.sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))

    def density(self, x: float) -> float:
        a, b = self.a, self.b
        if x <= 0.0:
            return b if a == 1 else 0.0  # a ≥ 1: the density's limit at 0
        if x >= 1.0:
            return a if b == 1 else 0.0
        return math.exp(self.log_norm + (a - 1) * math.log(x) + (b - 1) * math.log1p(-x))

    def cdf(self, x: float) -> float:
        """The regularized incomplete beta function I_x(a, b)."""
        a, b = self.a, self.b
        if x <= 0.0:
            return 0.0
        if x >= 1.0:
            return 1.0
        front = math.exp(self.log_norm + a * math.log(x) + b * math.log1p(-x))
        # The continued fraction converges fast below the mean; above it, use symmetry.
        if x < (a + 1) / (a + b + 2):
            return front * _continued_fraction(x, a, b) / a
        return 1.0 - front * _continued_fraction(1.0 - x, b, a) / b


def _continued_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of I_x(a, b), by the modified Lentz method."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, _CF_MAX_TERMS):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            result *= d * c
        if abs(d * c - 1.0) < _CF_EPSILON:
            break
    return result
