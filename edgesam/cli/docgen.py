"""Write docs/cli.md from the commands' own help texts: `python -m edgesam.cli.docgen > docs/cli.md`."""
from __future__ import annotations

import click

from edgesam.cli.main import main

WIDTH = 100


def _help(command: click.Command, path: list[str]) -> str:
    # Every verb inherits the root group's settings (-h as well as --help); give them explicitly so the
    # text does not depend on whether click has already built a context for this command.
    settings = {**main.context_settings, "max_content_width": WIDTH, "terminal_width": WIDTH}
    ctx = click.Context(command, info_name=" ".join(path), **settings)
    return command.get_help(ctx)


def _walk(command: click.Command, path: list[str]):
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=" ".join(path))
        for name in command.list_commands(ctx):
            yield from _walk(command.get_command(ctx, name), path + [name])


def render() -> str:
    parts = ["# edgesam command reference", "",
             "Generated from the commands' own `--help` by `python -m edgesam.cli.docgen > docs/cli.md`; "
             "a test fails when it is out of date.", ""]
    for path, command in _walk(main, ["edgesam"]):
        parts += [f"## `{' '.join(path)}`", "", "```text", _help(command, path).rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    click.echo(render(), nl=False)
