"""The Params form of a manual run: defaults from the portfolio file, every field validated."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import ParamValidationError

from rebalance.dag_factory import build_dag
from rebalance.portfolio import load_portfolio

EXAMPLE = Path(__file__).resolve().parents[2] / "portfolios" / "example.yaml"


@pytest.fixture(scope="module")
def params() -> ParamsDict:
    return build_dag(EXAMPLE, load_portfolio(EXAMPLE)).params


def validated(params: ParamsDict, **conf: object) -> dict[str, object]:
    merged = copy.deepcopy(params)
    merged.update(conf)
    return merged.validate()


def test_defaults_come_from_the_portfolio_file(params: ParamsDict) -> None:
    portfolio = load_portfolio(EXAMPLE)
    values = validated(params)
    assert values["mode"] == "dry_run"
    assert values["accounts"] == ["zerodha_main", "angelone_main"]
    assert values["max_trades"] == portfolio.policy.max_trades == 8
    assert values["rebalance_budget_pct"] == 10
    assert values["rebalance_budget_inr"] is None
    assert values["trade_filter"] == "both"
    assert values["rebalance_to"] == str(portfolio.policy.rebalance_to) == "target"
    assert values["max_order_charges_pct"] == portfolio.policy.max_order_charges_pct
    assert values["optimiser_time_cap_s"] == portfolio.policy.optimiser_time_cap_s


def test_the_optimiser_fields_override_the_policy(params: ParamsDict) -> None:
    values = validated(
        params, rebalance_to="band_edge", max_order_charges_pct=0.5, optimiser_time_cap_s=0
    )
    policy = load_portfolio(EXAMPLE).policy.with_overrides(
        {k: values[k] for k in ("rebalance_to", "max_order_charges_pct", "optimiser_time_cap_s")}
    )
    assert str(policy.rebalance_to) == "band_edge"
    assert policy.max_order_charges_pct == 0.5
    assert policy.optimiser_time_cap_s == 0


def test_a_valid_manual_run(params: ParamsDict) -> None:
    values = validated(
        params, mode="paper", accounts=["zerodha_main"], rebalance_budget_inr=25000, max_trades=3
    )
    assert values["accounts"] == ["zerodha_main"]
    assert values["rebalance_budget_inr"] == 25000


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mode", "yolo"),
        ("accounts", ["kotak_main"]),
        ("rebalance_budget_pct", 150),
        ("rebalance_budget_inr", -5),
        ("drift_band_abs_pct", -1),
        ("max_trades", 2.5),
        ("max_trades", -1),
        ("min_trade_value_inr", "lots"),
        ("trade_filter", "everything"),
        ("rebalance_to", "halfway"),
        ("max_order_charges_pct", 0),
        ("max_order_charges_pct", 101),
        ("optimiser_time_cap_s", -1),
        ("optimiser_time_cap_s", 61),
        ("optimiser_time_cap_s", "fast"),
    ],
)
def test_a_bad_field_is_refused_by_name(params: ParamsDict, field: str, value: object) -> None:
    with pytest.raises(ParamValidationError, match=field):
        validated(params, **{field: value})


def _airflow_assigned(dag_params: ParamsDict) -> ParamsDict:
    """The same Params through Airflow's own ``dag.params = ...`` (its validator included)."""
    dag = build_dag(EXAMPLE, load_portfolio(EXAMPLE))
    dag.params = {name: dag_params.get_param(name) for name in dag_params}  # type: ignore[assignment]
    return dag.params


def test_the_params_are_those_airflow_assigns(params: ParamsDict) -> None:
    # dag_factory sets the Params without Airflow's per-DAG meta-schema check (_set_params):
    # the DAG must end up with exactly what the plain assignment gives.
    assigned = _airflow_assigned(params)
    assert list(params) == list(assigned)
    assert params.dump() == assigned.dump()
    for name in params:
        mine, theirs = params.get_param(name), assigned.get_param(name)
        assert mine.serialize() == theirs.serialize(), name


def test_a_default_its_schema_refuses_fails_the_dag_as_airflow_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rebalance import dag_factory

    real = dag_factory._params

    def bad_default(portfolio: object) -> dict[str, object]:
        params = real(portfolio)  # type: ignore[arg-type]
        params["max_trades"] = dag_factory._param(-1, type="integer", minimum=0)
        return params  # type: ignore[return-value]

    monkeypatch.setattr(dag_factory, "_params", bad_default)
    with pytest.raises(ValueError, match="not allowed to define a Schedule") as ours:
        build_dag(EXAMPLE, load_portfolio(EXAMPLE))
    assert "max_trades" in str(ours.value.__cause__)
    # Airflow's own assignment refuses the same default the same way.
    monkeypatch.setattr(dag_factory, "_set_params", lambda d, p: setattr(d, "params", p))
    with pytest.raises(ValueError, match="not allowed to define a Schedule") as theirs:
        build_dag(EXAMPLE, load_portfolio(EXAMPLE))
    assert "max_trades" in str(theirs.value.__cause__)


def test_a_bad_schema_is_refused() -> None:
    from jsonschema.exceptions import SchemaError

    from rebalance.dag_factory import _schema_validator

    with pytest.raises(SchemaError, match="is not valid under any of the given schemas"):
        _schema_validator('{"$schema": "http://json-schema.org/draft-07/schema#", "type": 5}')
