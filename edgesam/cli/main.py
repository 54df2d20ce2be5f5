"""`edgesam` command line: a thin click layer; each verb lives in its own module and is imported
only when invoked, so `edgesam --help` and the torch-free verbs start fast.

Every verb runs inside one error boundary (`edgesam.cli.errors`): whatever it raises is shown as one
`Error: ...` line with exit code 1, unless --debug asks for the traceback. Thread pools are sized and
OpenMP spinning is switched off (`edgesam_runtime.threads`) before any verb imports torch.
"""
from __future__ import annotations

import importlib
import importlib.util

import click

from edgesam_runtime import threads
from edgesam.cli.errors import DEBUG_ENV, debug_requested, one_line, to_click_error

# Verbs that train: their OpenMP workers spin between ops instead of sleeping (edgesam_runtime.threads).
TRAINING_VERBS = frozenset({"finetune", "distill", "prune", "demo", "pipeline"})

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
    "inspect": "edgesam.cli.inspect:inspect",
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
        if name in TRAINING_VERBS:  # before the verb's module imports torch, whose OpenMP reads it once
            threads.spin_waiting()
        return getattr(importlib.import_module(module), attr)

    @staticmethod
    def _available(name: str) -> bool:
        return importlib.util.find_spec(COMMANDS[name].split(":")[0]) is not None

    def invoke(self, ctx):
        """Run the verb with sized thread pools; turn any exception into one error line (exit code 1)."""
        try:  # sizing the pools reads $EDGESAM_THREADS: a bad value is an error line too
            with threads.configured(ctx.params.get("cpu_threads")):
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except click.ClickException as exc:
            exc.message = one_line(exc.message)  # a verb's own error is one line too
            raise
        except Exception as exc:
            if debug_requested(ctx.params.get("debug", False)):
                raise
            raise to_click_error(exc) from None
        finally:
            from edgesam.utils.outputs import release_unused

            release_unused()  # a command that failed leaves no empty output folder behind


def _threads_option(ctx, param, value):
    try:
        return threads.parse_threads(value, "--cpu-threads")
    except ValueError:
        raise click.BadParameter(f"expected a positive number of threads or 'auto', got {value!r}") from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="edgesam")
@click.option("--debug", is_flag=True, help=f"Show the full traceback of an error (also: {DEBUG_ENV}=1).")
@click.option("--cpu-threads", metavar="N|auto", default=None, callback=_threads_option,
              help=f"Threads of the CPU stages (torch, OpenMP). Default: ${threads.ENV_THREADS}, else "
                   "$OMP_NUM_THREADS, else every usable core (idle workers sleep).")
def main(debug, cpu_threads):
    """edgesam: Segment Anything from checkpoint to inspection line.

    \b
    Pipeline: finetune -> merge -> prune or distill -> export -> bench/check -> runtime.
    Start with `edgesam demo --out runs/demo` to see every stage on a built-in default.
    Errors are one `Error: ...` line (exit code 1); `edgesam --debug VERB ...` shows the traceback.
    """


if __name__ == "__main__":
    main()
