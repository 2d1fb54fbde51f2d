"""Live weights, drift and bands: hand-checked examples, and agreement with the planner."""

from __future__ import annotations

from typing import Any

import pytest
from drift_support import snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalance.costs import broker_rates
from rebalance.drift.measure import band_width, measure_drift, outside_band
from rebalance.errors import ConfigError, InputDataError
from rebalance.planning import plan_rebalance
from rebalance.planning.book import build_book
from rebalance.planning.intents import decide_intents
from rebalance.policy import Policy, UnlistedHoldings

POLICY = Policy()  # bands 2% absolute, 15% relative


def test_on_target_is_inside_every_band() -> None:
    snap = snapshot(
        [
            {"symbol": "A", "quantity": 100, "last_price": 100.0},
            {"symbol": "B", "quantity": 60, "last_price": 100.0},
            {"symbol": "C", "quantity": 40, "last_price": 100.0},
        ],
        cash=0.0,
    )
    m = measure_drift(snap, {"A": 0.5, "B": 0.3, "C": 0.2}, POLICY)
    assert m.portfolio_value == 20_000.0
    assert [s.weight for s in m.symbols] == pytest.approx([0.5, 0.3, 0.2])
    assert not m.breached
    assert m.outside == ()
    assert m.total_drift == pytest.approx(0.0)
    assert m.cash_drift == pytest.approx(0.0)


def test_relative_band_binds_for_a_small_target() -> None:
    # B's band is min(2%, 15% x 10%) = 1.5%; after B's price rises 18% it is 1.59% over.
    snap = snapshot(
        [
            {"symbol": "A", "quantity": 90, "last_price": 100.0},
            {"symbol": "B", "quantity": 10, "last_price": 118.0},
        ]
    )
    m = measure_drift(snap, {"A": 0.9, "B": 0.1}, POLICY)
    a, b = m.symbols
    assert b.weight == pytest.approx(1180 / 10180)
    assert b.drift == pytest.approx(1180 / 10180 - 0.1)  # +1.591%
    assert b.band == pytest.approx(0.015)
    assert a.band == pytest.approx(0.02)
    assert b.outside_band
    assert not a.outside_band
    assert [s.symbol for s in m.outside] == ["B"]
    assert m.breached
    assert m.max_drift == pytest.approx(0.01591, abs=1e-5)
    assert m.cash is None
    assert m.cash_weight is None
    assert m.cash_drift is None
    assert m.total_drift == pytest.approx(m.symbols_total_drift)


def test_cash_counts_in_total_drift_but_never_breaches() -> None:
    targets = {"A": 0.45, "B": 0.45}
    rows = [
        {"symbol": "A", "quantity": 45, "last_price": 100.0},
        {"symbol": "B", "quantity": 45, "last_price": 100.0},
    ]
    m = measure_drift(snapshot(rows, cash=3000.0), targets, POLICY, cash_target=0.10)
    # value 12,000: A and B 37.5% (-7.5% each), cash 25% (+15% over its 10% target)
    assert m.cash_weight == pytest.approx(0.25)
    assert m.cash_drift == pytest.approx(0.15)
    assert m.symbols_total_drift == pytest.approx(0.15)
    assert m.total_drift == pytest.approx(0.30)
    assert m.max_drift == pytest.approx(0.075)
    # Cash alone far out: still only the symbols' bands decide a breach.
    wide = POLICY.with_overrides({"drift_band_abs_pct": 10.0, "drift_band_rel_pct": 50.0})
    m = measure_drift(snapshot(rows, cash=3000.0), targets, wide, cash_target=0.10)
    assert not m.breached
    assert m.cash_drift == pytest.approx(0.15)


def test_holdings_outside_the_targets_follow_unlisted_holdings() -> None:
    rows = [
        {"symbol": "A", "quantity": 100, "last_price": 100.0},
        {"symbol": "X", "quantity": 10, "last_price": 50.0},
    ]
    ignored = measure_drift(snapshot(rows), {"A": 1.0}, POLICY)
    assert ignored.ignored == ("X",)
    assert not ignored.breached
    assert ignored.portfolio_value == 10_000.0
    sell = POLICY.with_overrides({"unlisted_holdings": UnlistedHoldings.SELL})
    sold = measure_drift(snapshot(rows), {"A": 1.0}, sell)
    x = next(s for s in sold.symbols if s.symbol == "X")
    assert not x.listed
    assert x.target == 0.0
    assert x.band == 0.0
    assert x.outside_band
    assert sold.portfolio_value == 10_500.0


def test_bad_input_is_refused_as_the_planner_refuses_it() -> None:
    rows = [{"symbol": "A", "quantity": 10, "last_price": 100.0}]
    with pytest.raises(InputDataError, match="B: in the targets but not in the holdings"):
        measure_drift(snapshot(rows), {"A": 0.5, "B": 0.5}, POLICY)
    with pytest.raises(ConfigError, match=r"weights sum to 90\.00%"):
        measure_drift(snapshot(rows), {"A": 0.9}, POLICY)
    bad = [{"symbol": "A", "quantity": 10, "last_price": 0.0}]
    with pytest.raises(InputDataError, match="last_price: must be a number > 0"):
        measure_drift(snapshot(bad), {"A": 1.0}, POLICY)


@pytest.mark.parametrize(
    ("held", "abs_band", "rel_band", "expected"),
    [
        (5200, 2.0, 100.0, True),  # A drifts exactly the absolute band: outside (>=)
        (5199, 2.0, 100.0, False),
        (5300, 100.0, 6.0, True),  # exactly 6% of A's 50% target = 3%
        (5299, 100.0, 6.0, False),
        (5000, 0.0, 0.0, False),  # zero drift is never outside, even with zero bands
    ],
)
def test_band_edges_agree_with_the_planner(
    held: int, abs_band: float, rel_band: float, expected: bool
) -> None:
    policy = Policy(
        drift_band_abs_pct=abs_band,
        drift_band_rel_pct=rel_band,
        max_position_weight_pct=100.0,
        min_trade_value_inr=0.0,
    )
    snap = snapshot(
        [
            {"symbol": "A", "quantity": held, "last_price": 1.0},
            {"symbol": "B", "quantity": 10_000 - held, "last_price": 1.0},
        ]
    )
    m = measure_drift(snap, {"A": 0.5, "B": 0.5}, policy)
    assert m.symbols[0].outside_band is expected
    assert _planner_inside(snap, {"A": 0.5, "B": 0.5}, policy, None)["A"] is (not expected)


def _planner_inside(
    snap: Any, targets: dict[str, float], policy: Policy, cash_target: float | None
) -> dict[str, bool]:
    """symbol -> True when the planner leaves it alone as "inside_band"."""
    book = build_book(snap, targets, policy, cash_target=cash_target, today=None)
    intents, _ = decide_intents(book, policy, broker_rates("paper"))
    return {i.line.symbol: i.skipped == ("inside_band",) for i in intents}


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 10))
    rows = [
        {
            "symbol": f"S{i}",
            "quantity": draw(st.integers(1 if i == 0 else 0, 2000)),  # value > 0
            "last_price": draw(st.floats(1, 20_000).map(lambda p: round(p, 2))),
        }
        for i in range(n)
    ]
    for k in range(draw(st.integers(0, 2))):
        rows.append({"symbol": f"X{k}", "quantity": draw(st.integers(1, 300)), "last_price": 99.0})
    raw = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    raw[0] = raw[0] or 1
    cash_target = draw(st.sampled_from([None, 0.0, 0.05, 0.2]))
    invested = 1.0 - (cash_target or 0.0)
    targets = {f"S{i}": invested * r / sum(raw) for i, r in enumerate(raw)}
    bands = st.one_of(st.sampled_from([0.0, 0.5, 2.0, 5.0]), st.floats(0, 30))
    policy = Policy(
        drift_band_abs_pct=draw(bands),
        drift_band_rel_pct=draw(st.one_of(st.sampled_from([0.0, 15.0, 100.0]), st.floats(0, 200))),
        unlisted_holdings=draw(st.sampled_from(list(UnlistedHoldings))),
        max_position_weight_pct=100.0,  # no max-weight trims: the bands alone decide
        min_trade_value_inr=0.0,
    )
    cash = draw(st.one_of(st.none(), st.floats(1000, 5e6)))
    return {"rows": rows, "targets": targets, "cash": cash, "ct": cash_target, "policy": policy}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_bands_agree_with_the_planner_on_random_portfolios(case: dict[str, Any]) -> None:
    snap = snapshot(case["rows"], cash=case["cash"])
    policy, targets, ct = case["policy"], case["targets"], case["ct"]
    m = measure_drift(snap, targets, policy, cash_target=ct)
    inside = _planner_inside(snap, targets, policy, ct)
    assert {s.symbol: not s.outside_band for s in m.symbols} == inside
    # The figures the plan summary reports for the same snapshot are the watch's figures.
    summary = plan_rebalance(snap, targets, policy, cash_target=ct).summary
    assert m.max_drift == pytest.approx(summary.max_drift_before, abs=1e-12)
    assert m.symbols_total_drift == pytest.approx(summary.total_drift_before, abs=1e-12)
    assert m.portfolio_value == pytest.approx(summary.portfolio_value)
    if m.cash_weight is not None:
        assert m.cash_weight == pytest.approx(summary.cash_weight_before)


def test_band_width_is_the_tighter_band() -> None:
    assert band_width(0.5, POLICY) == pytest.approx(0.02)
    assert band_width(0.05, POLICY) == pytest.approx(0.0075)
    assert outside_band(0.0075, 0.05, POLICY)
    assert not outside_band(0.0074, 0.05, POLICY)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.sampled_from(["abs", "rel"]), st.sampled_from([1 - 1e-6, 1.0, 1 + 1e-6]))
def test_bands_agree_with_the_planner_at_a_symbols_own_edge(
    case: dict[str, Any], which: str, factor: float
) -> None:
    """Set one band exactly at (or a hair either side of) a symbol's drift: the cases random
    bands almost never hit, where ``>=`` against ``>`` or a tolerance would differ."""
    snap = snapshot(case["rows"], cash=case["cash"])
    targets, ct = case["targets"], case["ct"]
    probe = measure_drift(snap, targets, case["policy"], cash_target=ct).symbols[0]
    if which == "abs":
        bands = {"drift_band_abs_pct": min(100.0, abs(probe.drift) * 100 * factor)}
        bands["drift_band_rel_pct"] = 1000.0
    else:
        if probe.target <= 0 or abs(probe.drift) / probe.target * 100 * factor > 1000:
            return
        bands = {"drift_band_abs_pct": 100.0}
        bands["drift_band_rel_pct"] = abs(probe.drift) / probe.target * 100 * factor
    policy = case["policy"].with_overrides(bands)
    m = measure_drift(snap, targets, policy, cash_target=ct)
    assert {s.symbol: not s.outside_band for s in m.symbols} == _planner_inside(
        snap, targets, policy, ct
    )
