"""The layers of docs/architecture.md, checked: every import goes to the same or a lower layer.

Every module of ``include/rebalance`` is mapped to a layer (a module this map does not know fails
the test, so a new module is placed on purpose), and every import of the project's own modules,
including those inside functions, is read with ``ast``. ``dags/`` and ``plugins/`` are the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "include" / "rebalance"

DOMAIN, CORE, ADAPTERS, SERVICES, GLUE, ENTRY = range(6)
LAYER_NAMES = ("domain", "core", "adapters", "services", "Airflow glue", "entry points")

# Longest prefix wins: "rebalance.brokers" covers rebalance.brokers.zerodha and the package.
LAYERS: dict[str, int] = {
    "rebalance": DOMAIN,  # the package's __init__ only
    "rebalance.domain": DOMAIN,
    "rebalance.errors": DOMAIN,
    "rebalance.settings": DOMAIN,
    "rebalance.portfolio_file": CORE,
    "rebalance.portfolio": CORE,
    "rebalance.portfolio_check": CORE,
    "rebalance.policy": CORE,
    "rebalance.schedule": CORE,
    "rebalance.calendar": CORE,
    "rebalance.calendar_update": CORE,
    "rebalance.calendar_watch": CORE,
    "rebalance.holdings_file": CORE,
    "rebalance.snapshot": CORE,
    "rebalance.schemas": CORE,
    "rebalance.costs": CORE,
    "rebalance.plan": CORE,
    "rebalance.planning": CORE,
    "rebalance.tax": CORE,
    "rebalance.targets": CORE,
    "rebalance.drift": CORE,
    "rebalance.accounts": CORE,
    "rebalance.brokers": ADAPTERS,
    "rebalance.history": ADAPTERS,
    "rebalance.testing": ADAPTERS,
    "rebalance.execution": SERVICES,
    "rebalance.quality": SERVICES,
    "rebalance.approval": SERVICES,
    "rebalance.trading_rules": SERVICES,
    "rebalance.preview": SERVICES,
    "rebalance.reports": SERVICES,
    "rebalance.drift_watch": SERVICES,
    "rebalance.combined": SERVICES,
    "rebalance.ledgers": SERVICES,
    "rebalance.target_service": SERVICES,
    "rebalance.tax_history": SERVICES,
    "rebalance.tax_preview": SERVICES,
    "rebalance.manual_queue": SERVICES,
    "rebalance.preview_inputs": SERVICES,
    "rebalance.lane": GLUE,
    "rebalance.wiring": GLUE,
    "rebalance.worker_preload": GLUE,
    "rebalance.preload_config": GLUE,
    "rebalance.tasks": GLUE,
    "rebalance.resume": GLUE,
    "rebalance.manual_queue_wait": GLUE,
    "rebalance.target_model_task": GLUE,
    "rebalance.task_ids": GLUE,
    "rebalance.task_docs": GLUE,
    "rebalance.dag_factory": GLUE,
    "rebalance.drift_dag": GLUE,
    "rebalance.timetable": GLUE,
    "rebalance.alerts": GLUE,
    "rebalance.approval_operator": GLUE,
    "rebalance.combined_tasks": GLUE,
    "rebalance.ui": GLUE,
    "rebalance.cli": ENTRY,
}


def layer_of(module: str) -> int:
    """The layer of a dotted module name, by its longest mapped prefix."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            if prefix == "rebalance" and module != "rebalance":
                break  # only the package itself is "rebalance"; an unmapped module is an error
            return LAYERS[prefix]
    raise KeyError(f"{module} is not placed in a layer: add it to LAYERS (docs/architecture.md)")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import of ``rebalance`` in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or target == "rebalance":  # `from rebalance import tasks`
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return [(line, name) for line, name in found if name.split(".")[0] == "rebalance"]


def _resolve(name: str) -> str:
    """``rebalance.x.Name`` (a name imported from a module) -> the module ``rebalance.x``."""
    parts = name.split(".")
    while len(parts) > 1:
        dotted = ".".join(parts)
        relative = Path(*parts[1:])
        if (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir():
            return dotted
        parts.pop()
    return "rebalance"


PACKAGE_FILES = sorted(PACKAGE.rglob("*.py"))
TOP_FILES = sorted([*(ROOT / "dags").glob("*.py"), *(ROOT / "plugins").glob("*.py")])


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for path in PACKAGE_FILES:
        try:
            layer_of(module_name(path))
        except KeyError as exc:
            unplaced.append(str(exc))
    assert not unplaced, "\n".join(unplaced)


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_to_the_same_or_a_lower_layer(path: Path) -> None:
    module = module_name(path)
    own = layer_of(module)
    upward = []
    for line, name in project_imports(path, module):
        target = _resolve(name)
        if layer_of(target) > own:
            upward.append(
                f"{path.relative_to(ROOT)}:{line}: {module} ({LAYER_NAMES[own]}) imports "
                f"{target} ({LAYER_NAMES[layer_of(target)]})"
            )
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("path", TOP_FILES, ids=lambda p: p.name)
def test_dags_and_plugins_import_only_the_package(path: Path) -> None:
    """The top: DAG and plugin files may import any layer, but only modules that exist."""
    for _, name in project_imports(path, path.stem):
        layer_of(_resolve(name))  # raises for a module outside the map


def test_the_check_sees_an_upward_import_inside_a_function(tmp_path: Path) -> None:
    """The checker itself: a lazy import of a higher layer is found, with its line."""
    source = tmp_path / "costs.py"
    source.write_text("def f():\n    from rebalance.brokers.base import Side\n    return Side\n")
    imports = project_imports(source, "rebalance.costs")
    assert imports == [(2, "rebalance.brokers.base")]
    assert (
        layer_of(_resolve("rebalance.brokers.base.Side")) == ADAPTERS > layer_of("rebalance.costs")
    )


# Domain words have one home: importing them through another module (a re-export) is refused.
DOMAIN_WORDS = {
    "rebalance.brokers.base": {"Holding", "Instrument", "Quote", "Side"},
    "rebalance.schedule": {"IST", "IST_NAME", "MARKET_OPEN", "MARKET_CLOSE"},
}
TEST_FILES = sorted((ROOT / "tests").rglob("*.py"))


@pytest.mark.parametrize("path", [*PACKAGE_FILES, *TOP_FILES, *TEST_FILES], ids=str)
def test_domain_words_are_imported_from_the_domain(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name} from {node.module}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module in DOMAIN_WORDS
        for alias in node.names
        if alias.name in DOMAIN_WORDS[node.module]
    ]
    assert not found, "import these from rebalance.domain.market:\n" + "\n".join(found)
