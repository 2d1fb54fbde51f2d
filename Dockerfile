# The image every Airflow service of docker-compose.yaml runs: Airflow 3 + the `rebalance` package.
#
# Why the official apache/airflow image and not python:3.11-slim + `pip install -r requirements.txt`:
#   - its entrypoint waits for the metadata database, runs any arbitrary UID with GID 0 (so bind
#     mounts on Linux stay owned by the host user) and is the one Airflow's own compose file targets;
#   - it ships curl (the health checks use it), dumb-init, and the celery/redis providers that the
#     optional `celery` compose profile needs but our lock does not pin.
# The lock still decides: requirements.txt is installed on top, with the lock as the constraint,
# so every package our code imports is at the version our tests ran against.
#
# The tag below must equal the apache-airflow pin in requirements.txt;
# tests/deploy/test_compose.py fails when they differ. Bump both together.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

# Packages install as the `airflow` user, as Airflow's image documentation requires
# (https://airflow.apache.org/docs/docker-stack/build.html).
USER airflow

# Dependencies first, in their own layer: editing code does not reinstall them.
COPY --chown=airflow:0 requirements.txt /opt/rebalance/requirements.txt
# apache-airflow is named explicitly, pinned to the image's own version, so pip can never
# up- or downgrade the Airflow the image was built around.
RUN pip install --no-cache-dir \
        "apache-airflow==${AIRFLOW_VERSION}" \
        -r /opt/rebalance/requirements.txt \
        -c /opt/rebalance/requirements.txt \
    && (pip check || echo "WARNING: pip check reported conflicts with packages preinstalled in the base image (see above)")

# The project itself: the `rebalance` package (include/rebalance) and the `rebalance` command.
# Non-editable: the containers run the code baked into the image; dags/, plugins/ and portfolios/
# are bind-mounted by docker-compose.yaml, so editing those needs no rebuild.
# README.m[d]: pyproject.toml names README.md as the readme; the glob copies it when it exists and
# does not fail the build while it does not.
COPY --chown=airflow:0 pyproject.toml README.m[d] /opt/rebalance/
COPY --chown=airflow:0 include /opt/rebalance/include
RUN pip install --no-cache-dir --no-deps /opt/rebalance \
    && python -c "import rebalance" \
    && rebalance --help > /dev/null

# Working state (paper order books, caches, Data Docs). A named volume is mounted here; creating
# the folder in the image, group 0 writable, lets any AIRFLOW_UID write to it.
USER root
RUN mkdir -p /opt/airflow/state /opt/airflow/portfolios \
    && chown -R airflow:0 /opt/airflow/state /opt/airflow/portfolios \
    && chmod -R g+rwX /opt/airflow/state /opt/airflow/portfolios
USER airflow

ENV REBALANCE_PORTFOLIOS_DIR=/opt/airflow/portfolios \
    REBALANCE_STATE_DIR=/opt/airflow/state
