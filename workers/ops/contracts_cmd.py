"""`warren contracts export`: write the JSON Schemas and the AsyncAPI document, or check them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import contracts
from contracts.registry import Registry, default_registry
from contracts.wire_schemas import message_schemas, render
from workers.runtime.asyncapi import asyncapi_document

__all__ = ["ASYNCAPI_FILE", "DEFAULT_DIR", "app", "differences", "expected_files", "export"]

DEFAULT_DIR = Path(contracts.__file__).parent / "schemas"
ASYNCAPI_FILE = "asyncapi.json"

PROBLEMS = {
    "missing": "missing",
    "differs": "differs from what the contracts generate",
    "stale": "stale: no contract generates it any more",
}

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def contracts_group() -> None:
    """Export and check the message contracts."""


def expected_files(registry: Registry) -> dict[str, str]:
    """Every file `contracts/schemas/` must hold, by name, with its text."""
    files = {name: render(schema) for name, schema in message_schemas(registry).items()}
    files[ASYNCAPI_FILE] = render(asyncapi_document(registry))
    return files


def _present(directory: Path) -> dict[str, Path]:
    return {path.name: path for path in directory.glob("*.json")} if directory.is_dir() else {}


def differences(directory: Path, expected: dict[str, str]) -> list[tuple[str, str]]:
    """`(file name, "missing" | "differs" | "stale")` for every file that is not as expected."""
    present = _present(directory)
    problems = [(name, "missing") for name in expected if name not in present]
    problems += [
        (name, "differs")
        for name, text in expected.items()
        if name in present and present[name].read_text(encoding="utf-8") != text
    ]
    problems += [(name, "stale") for name in present if name not in expected]
    return sorted(problems)


def _check(directory: Path, expected: dict[str, str]) -> None:
    """Exit 1, naming each file, when `directory` does not hold exactly the expected files."""
    problems = differences(directory, expected)
    if not problems:
        typer.secho(f"schemas up to date: {len(expected)} files in {directory}", fg="green")
        return
    for name, problem in problems:
        typer.secho(f"{directory / name}: {PROBLEMS[problem]}", fg="red", err=True)
    typer.echo("run `warren contracts export` and commit the result", err=True)
    raise typer.Exit(1)


def _write(directory: Path, expected: dict[str, str]) -> None:
    """Make `directory` hold exactly the expected files, touching only those that change."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, problem in differences(directory, expected):
        path = directory / name
        if name in expected:
            path.write_text(expected[name], encoding="utf-8", newline="\n")
            typer.echo(f"wrote {path}")
        else:
            path.unlink()
            typer.echo(f"removed {path}: {PROBLEMS[problem]}")
    typer.secho(f"{len(expected)} files up to date in {directory}", fg="green")


@app.command()
def export(
    directory: Annotated[
        Path,
        typer.Option(
            "--dir",
            help="Where the schema files live.",
            file_okay=False,
            show_default="contracts/schemas",
        ),
    ] = DEFAULT_DIR,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Write nothing; exit 1 if any file is missing, differs or is stale."
        ),
    ] = False,
) -> None:
    """Write one JSON Schema per contract version plus asyncapi.json, or check they are current."""
    expected = expected_files(default_registry())
    if check:
        _check(directory, expected)
    else:
        _write(directory, expected)
