"""Each data-quality check is one record (``quality.CHECKS``): its expectation and its wording."""

from __future__ import annotations

from datetime import timedelta

from rebalance import quality


def test_every_check_runs_once_under_its_own_name_in_the_suite_order() -> None:
    expectations = quality._expectations(
        ["INFY"], max_age=timedelta(minutes=10), price_max_age=timedelta(minutes=5), with_value=True
    )
    names = [e.meta["check"] for e in expectations]
    assert names == [check.name for check in quality.CHECKS]
    assert len(set(names)) == len(names)
    assert all(e.description for e in expectations)


def test_checks_that_do_not_apply_are_left_out() -> None:
    expectations = quality._expectations(
        [], max_age=timedelta(minutes=10), price_max_age=None, with_value=False
    )
    names = {e.meta["check"] for e in expectations}
    absent = {"targets_quoted", "value_consistent", "quote_time_present", "quote_fresh"}
    assert names == {check.name for check in quality.CHECKS} - absent
