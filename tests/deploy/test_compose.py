"""Checks of docker-compose.yaml, Dockerfile and .env.example without Docker.

Docker does not run where this project is developed, so the deployment files are checked here:
against the Compose Specification's JSON schema (vendored in compose-spec.json, see README.md
beside this file) and against what the services need (same image, Airflow version of the lock,
config names Airflow reads, health checks, a history database apart from Airflow's, mounts that
exist, no secrets in the example env file).
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import os
import re
import secrets
import subprocess
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pyotp
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA_FILE = Path(__file__).with_name("compose-spec.json")

# Services that run Airflow (built from ./Dockerfile) and those that run once and exit.
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-init",
    "airflow-worker",
    "airflow-worker-orders",
    "flower",
}
ONE_SHOT_SERVICES = {"airflow-init"}
CELERY_SERVICES = {"redis", "airflow-worker", "airflow-worker-orders", "flower"}

# Bind-mount sources that are created at run time rather than kept in git (Docker or
# airflow-init creates them); each must be git-ignored so its contents never get committed.
RUNTIME_DIRS = {"logs"}

# [section] options of providers that the image carries but our lock (and so .venv) does not:
# the Celery provider ships in apache/airflow's image and is used only by the `celery` profile.
# Source: apache/airflow providers/celery/provider.yaml, `config.celery.options`.
NOT_INSTALLED_PROVIDER_OPTIONS = {"celery": {"broker_url", "result_backend"}}

AIRFLOW_ENV = re.compile(r"\bAIRFLOW__([A-Z0-9_]+?)__([A-Z0-9_]+)\b")
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# --- loading -----------------------------------------------------------------------------------


@cache
def _compose_text() -> str:
    return COMPOSE_FILE.read_text()


def compose() -> dict[str, Any]:
    """The compose file as Compose sees it after YAML anchors and merge keys (a fresh copy)."""
    return copy.deepcopy(_compose_cached())


@cache
def _compose_cached() -> dict[str, Any]:
    return yaml.safe_load(_compose_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Resolve ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` as Compose does."""
    env = env or {}

    def repl(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        if op in (":-", "-") and not current:
            return arg
        if op in (":?", "?") and not current:
            raise KeyError(f"{name}: {arg}")
        return current or ""

    return INTERPOLATION.sub(repl, value).replace("$$", "$")


def env_of(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    environment = services()[service].get("environment", {})
    assert isinstance(environment, dict), f"{service}: environment must be a mapping"
    return {k: interpolate(str(v), env) for k, v in environment.items()}


SECRETS_SET = {"AIRFLOW_FERNET_KEY": "x", "AIRFLOW_JWT_SECRET": "y"}


def env_example() -> dict[str, str]:
    """KEY=value lines of .env.example (comments skipped, single quotes removed)."""
    values = {}
    for raw in ENV_EXAMPLE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example: not KEY=value: {raw!r}"
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), f".env.example: bad name {key!r}"
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        values[key] = value
    return values


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


# --- Airflow's configuration names ------------------------------------------------------------


@cache
def airflow_config_options() -> dict[str, set[str]]:
    """``{section: {option}}`` Airflow reads: its config template plus installed providers'."""
    spec = importlib.util.find_spec("airflow")
    assert spec, "apache-airflow is not installed in .venv"
    assert spec.submodule_search_locations, "airflow is not a package"
    template = Path(next(iter(spec.submodule_search_locations))) / "config_templates/config.yml"
    options: dict[str, set[str]] = {
        section: set((body or {}).get("options") or {})
        for section, body in yaml.safe_load(template.read_text()).items()
    }
    for entry_point in entry_points(group="apache_airflow_provider"):
        for section, body in (entry_point.load()().get("config") or {}).items():
            options.setdefault(section, set()).update((body or {}).get("options") or {})
    for section, names in NOT_INSTALLED_PROVIDER_OPTIONS.items():
        options.setdefault(section, set()).update(names)
    # [core] mp_start_method's description: "This can be overridden per component by setting
    # mp_start_method in the [scheduler], [triggerer] or [dag_processor] section" (read, with
    # mp_forkserver_preload, by airflow.utils.process_utils.set_component_mp_start_method).
    per_component = options["core"] & {"mp_start_method", "mp_forkserver_preload"}
    for section in ("scheduler", "triggerer", "dag_processor"):
        options.setdefault(section, set()).update(per_component)
    return options


def unknown_airflow_env_names(text: str) -> list[str]:
    """Every ``AIRFLOW__SECTION__KEY`` in ``text`` that Airflow's configuration does not have."""
    known = airflow_config_options()
    unknown = []
    for match in AIRFLOW_ENV.finditer(text):
        section, option = match.group(1).lower(), match.group(2).lower()
        if option not in known.get(section, set()):
            unknown.append(match.group(0))
    return sorted(set(unknown))


# --- the Compose Specification ----------------------------------------------------------------


@cache
def _validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in _validator().iter_errors(document)
    ]


def test_compose_file_matches_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d["services"]["postgres"].update(helthcheck={}), id="unknown-key"),
        pytest.param(
            lambda d: d["services"]["airflow-scheduler"]["depends_on"]["postgres"].update(
                condition="service_ready"
            ),
            id="bad-depends-on-condition",
        ),
        pytest.param(lambda d: d.update(servics={}), id="unknown-top-level-key"),
        pytest.param(
            lambda d: d["services"]["airflow-apiserver"].update(ports="8080:8080"),
            id="ports-not-a-list",
        ),
    ],
)
def test_schema_check_rejects_broken_files(mutate: Any) -> None:
    # The schema test above means something only if the vendored schema rejects real mistakes.
    document = compose()
    mutate(document)
    assert schema_errors(document)


def test_vendored_schema_names_its_source() -> None:
    readme = SCHEMA_FILE.with_name("README.md").read_text()
    assert "compose-spec/compose-spec" in readme
    assert "schema/compose-spec.json" in readme
    assert re.search(r"\d{4}-\d{2}-\d{2}", readme), "README.md must date the vendored copy"


# --- services ---------------------------------------------------------------------------------


def test_expected_services_exist() -> None:
    names = set(services())
    assert {"postgres", "postgres-history", *AIRFLOW_SERVICES, *CELERY_SERVICES} <= names


def test_airflow_services_share_one_image_built_from_the_dockerfile() -> None:
    svc = services()
    builds = {json.dumps(svc[name].get("build"), sort_keys=True) for name in AIRFLOW_SERVICES}
    images = {svc[name].get("image") for name in AIRFLOW_SERVICES}
    assert len(builds) == 1, f"Airflow services differ in build: {builds}"
    assert len(images) == 1, f"Airflow services differ in image: {images}"
    build = svc["airflow-scheduler"]["build"]
    assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == (
        DOCKERFILE.resolve()
    )
    # Every other service uses a public image and no build.
    for name in set(svc) - AIRFLOW_SERVICES:
        assert "build" not in svc[name], f"{name} should not build the Airflow image"


def test_airflow_services_run_the_airflow_commands() -> None:
    svc = services()
    commands = {name: svc[name].get("command") for name in AIRFLOW_SERVICES - ONE_SHOT_SERVICES}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
        "airflow-worker-orders": "celery worker --queues orders",
        "flower": "celery flower",
    }


def test_dockerfile_base_image_matches_the_airflow_pin_in_the_lock() -> None:
    text = DOCKERFILE.read_text()
    match = re.search(r"apache/airflow:(?:slim-)?(\d+\.\d+\.\d+)-python(\d+\.\d+)", text)
    assert match, "Dockerfile must be based on an apache/airflow:<version>-python<x.y> image"
    airflow_version, python_version = match.groups()
    pins = lock_pins()
    assert airflow_version == pins["apache-airflow"], (
        f"Dockerfile uses Airflow {airflow_version}, requirements.txt pins {pins['apache-airflow']}"
    )
    assert airflow_version == pins["apache-airflow-core"]
    assert python_version == "3.11"
    # Every apache/airflow reference in the Dockerfile is the same version.
    assert set(re.findall(r"apache/airflow:(?:slim-)?([\d.]+)-", text)) == {airflow_version}


def test_dockerfile_installs_the_lock_and_the_project() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"pip install[^\n]*(\\\n[^\n]*)*-r [^\s]*requirements\.txt", text)
    assert re.search(r"-c [^\s]*requirements\.txt", text), "the lock must be the constraint"
    assert re.search(r"pip install[^\n]*--no-deps[^\n]*/opt/rebalance", text)
    assert "COPY --chown=airflow:0 include " in text


def test_dockerignore_keeps_secrets_and_runtime_files_out_of_the_image() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "**", "ignore everything, then allow what the image needs"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert allowed <= {"requirements.txt", "pyproject.toml", "README.md", "include"}
    assert ".env" not in allowed


def test_every_airflow_env_name_is_an_airflow_config_option() -> None:
    text = _compose_text() + "\n" + ENV_EXAMPLE.read_text() + "\n" + DOCKERFILE.read_text()
    assert AIRFLOW_ENV.search(text), "expected AIRFLOW__SECTION__KEY names to check"
    assert unknown_airflow_env_names(text) == []


def test_unknown_airflow_env_names_are_caught() -> None:
    text = (
        "AIRFLOW__CORE__EXECUTOR AIRFLOW__CORE__EXECUTER AIRFLOW__WEBSERVER__SECRET_KEY "
        "AIRFLOW__API_AUTH__JWT_SECRET AIRFLOW__DATABASE__SQL_ALCHEMY_CON"
    )
    # Misspellings and Airflow 2 names that Airflow 3 dropped ([webserver] secret_key).
    assert unknown_airflow_env_names(text) == [
        "AIRFLOW__CORE__EXECUTER",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CON",
        "AIRFLOW__WEBSERVER__SECRET_KEY",
    ]


def test_airflow_settings_for_a_local_deployment() -> None:
    env = env_of("airflow-scheduler", SECRETS_SET)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("simple_auth_manager.SimpleAuthManager")
    assert env["AIRFLOW__CORE__FERNET_KEY"] == "x"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "y"
    # The execution API is served by the api-server service, on the port it listens on.
    url = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert url.hostname == "airflow-apiserver"
    assert url.path.rstrip("/") == "/execution"
    ports = services()["airflow-apiserver"]["ports"]
    assert any(str(p).endswith(f":{url.port}") for p in ports)
    assert (
        env["AIRFLOW__CORE__EXECUTOR"]
        == (
            env_of("airflow-scheduler", {**SECRETS_SET, "AIRFLOW_EXECUTOR": ""})[
                "AIRFLOW__CORE__EXECUTOR"
            ]
        )
    )
    assert (
        env_of("airflow-scheduler", {**SECRETS_SET, "AIRFLOW_EXECUTOR": "CeleryExecutor"})[
            "AIRFLOW__CORE__EXECUTOR"
        ]
        == "CeleryExecutor"
    )


def test_secrets_have_no_defaults_in_the_compose_file() -> None:
    # Without a fernet key or JWT secret compose must refuse to start, not invent one.
    for name in ("AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET"):
        with pytest.raises(KeyError, match=name):
            env_of("airflow-scheduler", {k: v for k, v in SECRETS_SET.items() if k != name})


def test_every_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        test = check.get("test")
        assert test, f"{name}: healthcheck has no test"
        assert test != ["NONE"], f"{name}: healthcheck test is NONE"
        if isinstance(test, list):
            assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: {test}"
            assert len(test) > 1, f"{name}: {test}"


def test_depends_on_conditions_point_at_services_that_can_meet_them() -> None:
    svc = services()
    for name, service in svc.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in svc, f"{name} depends on unknown service {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in svc[target], f"{name} waits for {target} to be healthy"
            if condition == "service_completed_successfully":
                assert target in ONE_SHOT_SERVICES, f"{target} is not a one-shot service"
            # A service outside the celery profile cannot wait for one inside it.
            if not svc[name].get("profiles"):
                assert not svc[target].get("profiles"), f"{name} depends on optional {target}"


def test_airflow_services_wait_for_both_databases_and_for_init() -> None:
    svc = services()
    for name in AIRFLOW_SERVICES:
        deps = svc[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["postgres-history"]["condition"] == "service_healthy", name
        if name not in ONE_SHOT_SERVICES:
            assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
    assert "airflow-init" not in svc["airflow-init"]["depends_on"]


def test_airflow_init_migrates_both_databases_and_sets_the_admin_password() -> None:
    init = services()["airflow-init"]
    script = "\n".join(init["command"]) if isinstance(init["command"], list) else init["command"]
    assert "airflow db migrate" in script
    assert re.search(r"^\s*rebalance db upgrade\s*$", script, re.MULTILINE)
    assert script.index("airflow db migrate") < script.index("rebalance db upgrade")
    assert "set -e" in script, "a failed migration must fail airflow-init"
    assert "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script
    env = env_of("airflow-init", SECRETS_SET)
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert init.get("restart", "no") == "no"


def test_celery_is_an_optional_profile() -> None:
    svc = services()
    for name, service in svc.items():
        if name in CELERY_SERVICES:
            assert service.get("profiles") == ["celery"], name
        else:
            assert not service.get("profiles"), f"{name} must start without a profile"
    worker_deps = svc["airflow-worker"]["depends_on"]
    assert worker_deps["redis"]["condition"] == "service_healthy"
    broker = urlsplit(env_of("airflow-worker", SECRETS_SET)["AIRFLOW__CELERY__BROKER_URL"])
    assert broker.hostname == "redis"


# --- the two databases ------------------------------------------------------------------------


def test_history_database_is_a_separate_service_from_airflow_metadata() -> None:
    svc = services()
    env = env_of("airflow-scheduler", SECRETS_SET)
    airflow_db = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    history_db = urlsplit(env["REBALANCE_DB_URL"])
    assert airflow_db.hostname == "postgres"
    assert history_db.hostname == "postgres-history"
    assert history_db.scheme == "postgresql+psycopg"
    assert history_db.path == "/" + svc["postgres-history"]["environment"]["POSTGRES_DB"]
    assert airflow_db.path == "/" + svc["postgres"]["environment"]["POSTGRES_DB"]
    # Separate data volumes: wiping one database never touches the other.
    volumes = [
        {str(v).split(":")[0] for v in svc[name]["volumes"]}
        for name in ("postgres", "postgres-history")
    ]
    assert volumes[0].isdisjoint(volumes[1])
    assert volumes[0] | volumes[1] <= set(compose()["volumes"])
    # The history credentials match the server's.
    assert history_db.username == svc["postgres-history"]["environment"]["POSTGRES_USER"]
    assert history_db.password == interpolate(
        svc["postgres-history"]["environment"]["POSTGRES_PASSWORD"]
    )


# --- mounts and paths -------------------------------------------------------------------------


def _bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    mounts = {}
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if source.startswith((".", "/", "$")):
            mounts[rest.split(":")[0]] = interpolate(source)
    return mounts


def test_bind_mount_sources_exist_in_the_repo_or_are_git_ignored_runtime_dirs() -> None:
    seen = set()
    for name, service in services().items():
        for source in _bind_mounts(service).values():
            path = (ROOT / source).resolve()
            assert path.is_relative_to(ROOT), f"{name} mounts {source} from outside the repo"
            relative = path.relative_to(ROOT).as_posix()
            seen.add(relative)
            if relative in RUNTIME_DIRS:
                ignored = subprocess.run(
                    ["git", "check-ignore", "-q", relative + "/"], cwd=ROOT, check=False
                )
                assert ignored.returncode == 0, f"{relative}/ must be git-ignored"
            else:
                assert path.is_dir(), f"{name} mounts {source}, which is not in the repo"
    assert {"dags", "plugins", "portfolios", "logs"} <= seen


def test_named_volumes_are_declared() -> None:
    declared = set(compose().get("volumes") or {})
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_code_finds_its_folders_at_the_mount_targets() -> None:
    scheduler = services()["airflow-scheduler"]
    mounts = _bind_mounts(scheduler)
    targets = {interpolate(source): target for target, source in mounts.items()}
    env = env_of("airflow-scheduler", SECRETS_SET)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == targets["./dags"]
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == targets["./plugins"]
    assert env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] == targets["./logs"]
    assert env["REBALANCE_PORTFOLIOS_DIR"] == targets["./portfolios"]
    volume_targets = {str(v).split(":")[1] for v in scheduler["volumes"]}
    assert env["REBALANCE_STATE_DIR"] in volume_targets, "state must outlive the containers"
    password_file = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert str(Path(password_file).parent) in volume_targets


# --- .env.example and .env --------------------------------------------------------------------

PLACEHOLDER = re.compile(r"^(|<[^<>]+>)$")
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|FERNET|_KEY$|PIN)", re.IGNORECASE)
SECRET_FIELD = re.compile(r"(password|secret|token|key|pin)", re.IGNORECASE)
# Long unbroken runs of token characters: API keys, access tokens, Fernet keys, JWT secrets.
TOKEN_LIKE = re.compile(r"(?<![<\w-])[A-Za-z0-9+/=_\-]{20,}(?![\w>-])")


def _secret_values(name: str, value: str) -> list[tuple[str, str]]:
    """(where, value) of every credential-like value in one .env line."""
    found = []
    if name.startswith("AIRFLOW_CONN_") and value.startswith("{"):
        conn = json.loads(value)
        for field in ("login", "password"):
            if field in conn:
                found.append((f"{name}.{field}", str(conn[field])))
        for field, inner in (conn.get("extra") or {}).items():
            if SECRET_FIELD.search(field):
                found.append((f"{name}.extra.{field}", str(inner)))
    elif SECRET_NAME.search(name):
        found.append((name, value))
    return found


def real_looking_secrets(text: str) -> list[str]:
    problems = []
    for raw in text.splitlines():
        line = raw.strip().lstrip("#").strip()
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        value = value.strip("'")
        for where, secret in _secret_values(key, value):
            if not PLACEHOLDER.match(secret):
                problems.append(f"{where} is not empty or a <placeholder>")
        problems += [f"{key}: token-like {t!r}" for t in TOKEN_LIKE.findall(value)]
    return problems


def test_env_example_holds_placeholders_only() -> None:
    assert real_looking_secrets(ENV_EXAMPLE.read_text()) == []


def _real_looking_lines() -> list[str]:
    """Lines with secrets shaped like real ones, made fresh at run time (none is committed)."""
    fernet = base64.urlsafe_b64encode(os.urandom(32)).decode()
    totp = pyotp.random_base32()
    return [
        f"AIRFLOW_FERNET_KEY={fernet}",
        f"_AIRFLOW_WWW_USER_PASSWORD={secrets.token_hex(4)}",
        f'AIRFLOW_CONN_ZERODHA_MAIN=\'{{"login": "<k>", "password": "{secrets.token_hex(3)}"}}\'',
        f'AIRFLOW_CONN_ANGELONE_MAIN=\'{{"login": "<c>", "extra": {{"totp_secret": "{totp}"}}}}\'',
        f"REBALANCE_ALERT_WEBHOOK_URL=https://hooks.example.com/{secrets.token_urlsafe(24)}",
    ]


@pytest.mark.parametrize("index", range(len(_real_looking_lines())))
def test_secret_check_catches_real_looking_values(index: int) -> None:
    assert real_looking_secrets(_real_looking_lines()[index])


def test_env_example_parses_and_documents_every_compose_variable() -> None:
    values = env_example()
    for name in ("AIRFLOW_CONN_ZERODHA_MAIN", "AIRFLOW_CONN_ANGELONE_MAIN"):
        conn = json.loads(values[name])  # Airflow's JSON connection format
        assert {"conn_type", "login", "password"} <= set(conn), name
    used = {m.group(1) for m in INTERPOLATION.finditer(_compose_text())}
    documented = set(values) | set(re.findall(r"^#\s*([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text()))
    assert used - documented == set(), "variables docker-compose.yaml reads but .env.example lacks"
    # Notifications are off unless someone fills them in.
    assert values["REBALANCE_ALERT_EMAIL"] == ""
    assert values["REBALANCE_ALERT_WEBHOOK_URL"] == ""
    assert "AIRFLOW_CONN_SMTP_DEFAULT" not in values


def test_compose_reads_env_file_and_env_is_git_ignored() -> None:
    for name in AIRFLOW_SERVICES:
        env_files = services()[name]["env_file"]
        paths = [f if isinstance(f, str) else f["path"] for f in env_files]
        assert paths == [".env"], name
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env must be git-ignored"
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", ".env"], cwd=ROOT, capture_output=True, check=False
    )
    assert tracked.returncode != 0, ".env is committed"


def test_place_orders_goes_to_the_orders_worker_alone() -> None:
    """place_orders' queue (REBALANCE_ORDERS_QUEUE, read at parse time) is served only by
    airflow-worker-orders: the worker behind the brokers' registered IP (docs/deploy.md)."""
    svc = services()
    queue = env_of("airflow-dag-processor", SECRETS_SET)["REBALANCE_ORDERS_QUEUE"]
    assert queue == "orders"
    assert svc["airflow-worker-orders"]["command"].split()[-2:] == ["--queues", queue]
    assert "--queues" not in svc["airflow-worker"]["command"]  # the default queue only
    assert env_of("airflow-worker-orders", SECRETS_SET)["REBALANCE_ORDERS_QUEUE"] == queue
