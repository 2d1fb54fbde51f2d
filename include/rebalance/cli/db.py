"""``rebalance db upgrade`` / ``rebalance db status``: the history database's schema."""

from __future__ import annotations

import typer

from rebalance.cli import app

db_app = typer.Typer(
    help="History database: apply migrations, show the schema version.", no_args_is_help=True
)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade() -> None:
    """Apply the Alembic migrations (REBALANCE_DB_URL, or start the embedded PostgreSQL)."""
    from rebalance.history.database import history_url, redacted
    from rebalance.history.migrate import current_revision
    from rebalance.history.migrate import upgrade as run_upgrade

    url = history_url()
    run_upgrade(url)
    typer.echo(f"history database {redacted(url)} at revision {current_revision(url)}")


@db_app.command("url")
def url() -> None:
    """Print the history database URL (password hidden); starts the embedded server if needed."""
    from rebalance.history.database import history_url, redacted

    typer.echo(redacted(history_url()))
