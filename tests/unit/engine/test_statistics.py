"""The statistics of SPEC §8, each checked against a value computed here another way."""

from __future__ import annotations

import math
import random
from statistics import NormalDist

import pytest

from chalicelib.engine.statistics import Proportion, lift, p_best, p_value


def test_rate() -> None:
    assert Proportion(25, 200).rate == 0.125
    assert Proportion(0, 0).rate is None


def test_a_proportion_cannot_have_more_hits_than_its_size() -> None:
    with pytest.raises(ValueError, match="between 0 and size"):
        Proportion(5, 4)


def test_lift_is_treatment_rate_over_control_rate_minus_one() -> None:
    assert lift(Proportion(120, 1000), Proportion(100, 1000)) == pytest.approx(0.2)
    assert lift(Proportion(80, 1000), Proportion(10, 100)) == pytest.approx(-0.2)


@pytest.mark.parametrize(
    ("treatment", "control"),
    [(Proportion(5, 100), Proportion(0, 100)), (Proportion(5, 100), Proportion(0, 0))],
)
def test_lift_without_a_control_rate_is_unknown(treatment, control) -> None:
    assert lift(treatment, control) is None


def _z_test_reference(k1: int, n1: int, k2: int, n2: int) -> float:
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 2 * (1 - NormalDist().cdf(abs(z)))


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2"),
    [(120, 1000, 100, 1000), (100, 1000, 120, 1000), (30, 400, 12, 380), (5, 50, 5, 50),
     (510, 10000, 498, 9000), (1, 3, 2, 3)],
)  # fmt: skip
def test_p_value_is_the_pooled_two_proportion_z_test(k1, n1, k2, n2) -> None:
    expected = _z_test_reference(k1, n1, k2, n2)
    assert p_value(Proportion(k1, n1), Proportion(k2, n2)) == pytest.approx(expected, abs=1e-12)


def test_p_value_is_symmetric() -> None:
    a, b = Proportion(30, 400), Proportion(12, 380)
    assert p_value(a, b) == p_value(b, a)


def test_p_value_stays_exact_in_the_far_tail() -> None:
    # 1 - cdf rounds to 0 here; the p-value is tiny but not 0.
    value = p_value(Proportion(900, 1000), Proportion(100, 1000))
    assert value is not None
    assert 0 < value < 1e-100


def test_p_value_of_empty_groups_and_of_no_variance() -> None:
    assert p_value(Proportion(0, 0), Proportion(3, 10)) is None
    assert p_value(Proportion(0, 10), Proportion(0, 20)) == 1.0
    assert p_value(Proportion(10, 10), Proportion(20, 20)) == 1.0


# --- p_best ---------------------------------------------------------------------------


@pytest.mark.parametrize("branches", [2, 3, 4])
@pytest.mark.parametrize(("hits", "size"), [(0, 0), (7, 100), (480, 5000)])
def test_identical_branches_are_equally_likely_best(branches, hits, size) -> None:
    assert p_best([Proportion(hits, size)] * branches) == pytest.approx(
        [1 / branches] * branches, abs=1e-9
    )


def _p_b_beats_a(a: Proportion, b: Proportion) -> float:
    """P(θ_B > θ_A) for Beta(1+k, 1+n-k) posteriors: the closed-form sum (Evan Miller)."""

    def log_beta(x: float, y: float) -> float:
        return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)

    alpha_a, beta_a = 1 + a.hits, 1 + a.size - a.hits
    alpha_b, beta_b = 1 + b.hits, 1 + b.size - b.hits
    return sum(
        math.exp(
            log_beta(alpha_a + i, beta_a + beta_b)
            - math.log(beta_b + i)
            - log_beta(1 + i, beta_b)
            - log_beta(alpha_a, beta_a)
        )
        for i in range(alpha_b)
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (Proportion(50, 500), Proportion(60, 500)),
        (Proportion(0, 1000), Proportion(3, 1000)),
        (Proportion(10, 20), Proportion(3, 25)),
        (Proportion(1000, 10000), Proportion(1040, 10000)),
        (Proportion(0, 0), Proportion(1, 1)),
    ],
)
def test_two_branches_match_the_closed_form(a, b) -> None:
    found = p_best([a, b])
    expected = _p_b_beats_a(a, b)
    assert found[1] == pytest.approx(expected, abs=1e-6)
    assert sum(found) == pytest.approx(1)


def _monte_carlo(branches: list[Proportion], draws: int = 40_000) -> list[float]:
    rng = random.Random(20260610)
    wins = [0] * len(branches)
    for _ in range(draws):
        samples = [rng.betavariate(1 + b.hits, 1 + b.size - b.hits) for b in branches]
        wins[samples.index(max(samples))] += 1
    return [w / draws for w in wins]


@pytest.mark.parametrize(
    "branches",
    [
        [Proportion(50, 500), Proportion(60, 500), Proportion(55, 500)],
        [Proportion(50, 500), Proportion(60, 500), Proportion(55, 500), Proportion(70, 500)],
        [Proportion(3, 40), Proportion(0, 10), Proportion(9, 60), Proportion(2, 5)],
        [Proportion(500, 10000), Proportion(560, 10000), Proportion(5000, 10000)],
    ],
)
def test_three_and_four_branches_match_a_monte_carlo(branches) -> None:
    # 40,000 draws: the standard error of a share is at most 0.0025.
    assert p_best(branches) == pytest.approx(_monte_carlo(branches), abs=0.01)


def test_p_best_is_deterministic_and_sums_to_one() -> None:
    branches = [Proportion(12, 300), Proportion(19, 310), Proportion(15, 290)]
    assert p_best(branches) == p_best(branches)
    assert sum(p_best(branches)) == pytest.approx(1, abs=1e-12)


def test_a_single_branch_is_surely_best() -> None:
    assert p_best([Proportion(3, 10)]) == [1.0]
