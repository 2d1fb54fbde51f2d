"""The tax estimate in the approval preview (Markdown) and on the Rebalance page (HTML): per
sell the tax and the FIFO lots it takes, the total beside the charges, the after-tax cost, and
the symbols without tax data with why. Without tax (tax: off) nothing changes."""

from __future__ import annotations

from datetime import timedelta

from planner_support import TODAY, snapshot

from rebalance.plan import TradePlan
from rebalance.planning import plan_rebalance
from rebalance.policy import Policy
from rebalance.preview import render_preview
from rebalance.tax.lots import Lot
from rebalance.tax.planning import TaxContext
from rebalance.ui.preview_page import plan_section
from rebalance.ui.whatif import AccountPreview


def _plans() -> tuple[TradePlan, TradePlan]:
    snap = snapshot(
        [
            {"symbol": "INFY", "quantity": 300, "last_price": 2000.0},
            {"symbol": "TCS", "quantity": 100, "last_price": 4000.0},
        ],
        cash=0.0,
    )
    lots = (
        Lot("main", "INFY", TODAY - timedelta(days=400), 100, 1000.0),
        Lot("main", "INFY", TODAY - timedelta(days=100), 200, 1500.0),
    )
    context = TaxContext("main", TODAY, {"INFY": lots}, {"TCS": "TCS: lots do not add up"})
    base = {"rebalance_budget_pct": 50, "max_position_weight_pct": 100, "min_trade_value_inr": 0}
    targets = {"INFY": 0.4, "TCS": 0.6}
    taxed = plan_rebalance(snap, targets, Policy(**base, tax="report"), today=TODAY, tax=context)
    plain = plan_rebalance(snap, targets, Policy(**base), today=TODAY, tax=context)
    return taxed, plain


def _markdown(plan: TradePlan) -> str:
    return render_preview(
        plan.to_dict(), portfolio_name="P", account="main", mode="paper", plan_hash=plan.plan_hash
    )


def test_the_approval_preview_shows_the_tax_beside_the_charges() -> None:
    taxed, plain = _plans()
    text = _markdown(taxed)
    assert taxed.tax is not None
    assert f"Est. tax ₹{taxed.tax['estimated_tax']:,.2f} (FY 2026-27, tax: report)" in text
    assert f"after-tax cost of the rebalance **₹{taxed.tax['after_tax_cost']:,.2f}**" in text
    assert "| INFY | 101 | 500.00 | 100,000.00 | 104.00 |" in text
    assert "100 from 2025-10-21 (400 d, long); 1 from 2026-08-17 (100 d, short)" in text
    assert "no tax data for TCS: TCS: lots do not add up" in text
    assert "Tax" not in _markdown(plain)  # tax: off, no section
    assert plain.plan_hash == taxed.plan_hash  # the estimate is not part of what is approved


def test_the_rebalance_page_shows_the_tax_table() -> None:
    taxed, plain = _plans()
    html = plan_section(AccountPreview("main", "paper", "fresh", None, taxed))
    assert "id='tax-orders'" in html
    assert "<td class='num' id='tax-total'><b>104.00</b></td>" in html
    assert "after-tax cost of the rebalance ₹" in html
    assert "tax-orders" not in plan_section(AccountPreview("main", "paper", "fresh", None, plain))


def test_the_plan_round_trips_with_its_tax() -> None:
    taxed, _ = _plans()
    assert TradePlan.from_dict(taxed.to_dict()) == taxed
