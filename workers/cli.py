"""The `warren` command: one entry point for every process and operator task."""

from __future__ import annotations

import typer

from workers.ops.contracts_cmd import app as contracts_app
from workers.ops.doctor import doctor

app = typer.Typer(
    name="warren",
    help="Warren: asynchronous order processing on RabbitMQ.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(contracts_app, name="contracts", help="Export and check the message contracts.")
app.command(help="Check that RabbitMQ, its management API and PostgreSQL answer.")(doctor)


if __name__ == "__main__":
    app()
