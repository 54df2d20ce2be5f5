"""`edgesam` command line: a thin click layer; each verb lives in its own module and is imported
only when invoked, so `edgesam --help` and the torch-free verbs start fast."""
from __future__ import annotations

import importlib
import importlib.util

import click

# verb -> "module:attribute"; each module parses flags, builds a config and calls one library function.
COMMANDS = {
    "info": "edgesam.cli.info:info",
    "data": "edgesam.cli.data:data",
    "predict": "edgesam.cli.predict:predict",
    "finetune": "edgesam.cli.finetune:finetune",
    "eval": "edgesam.cli.evaluate:evaluate",
    "merge": "edgesam.cli.merge:merge",
    "prune": "edgesam.cli.prune:prune",
    "distill": "edgesam.cli.distill:distill",
    "export": "edgesam.cli.export:export",
    "calib": "edgesam.cli.calib:calib",
    "bench": "edgesam.cli.bench:bench",
    "check": "edgesam.cli.bench:check",
    "demo": "edgesam.cli.demo:demo",
    "pipeline": "edgesam.cli.demo:pipeline",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [name for name in COMMANDS if self._available(name)]

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    @staticmethod
    def _available(name: str) -> bool:
        return importlib.util.find_spec(COMMANDS[name].split(":")[0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="edgesam")
def main():
    """edgesam: Segment Anything from checkpoint to inspection line.

    \b
    Pipeline: finetune -> merge -> prune or distill -> export -> bench/check -> runtime.
    Start with `edgesam demo --out runs/demo` to see every stage on a built-in default.
    """


if __name__ == "__main__":
    main()
