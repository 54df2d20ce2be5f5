"""`edgesam info`: model variants, tool versions, and the CPU features that decide int8/bf16 speed."""
from __future__ import annotations

import json

import click

from edgesam_runtime.backends.choice import cpu_notes
from edgesam_runtime.envinfo import CPU_FLAGS, load_average, threads_line
from edgesam_runtime.threads import thread_record


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def info(as_json: bool):
    """Show model variants (parameters), tool versions (torch, CUDA, onnxruntime, OpenVINO, TensorRT), the
    CPU with the instruction-set flags that decide which int8/bf16 kernels exist (avx2, avx512f, avx512_vnni,
    avx_vnni, avx512_bf16, amx), and how many threads the CPU stages run with and why.

    \b
    Example:
      edgesam info
    """
    from edgesam.models.registry import variant_table
    from edgesam.utils.environment import toolchain_environment

    env, variants, threads = toolchain_environment(), variant_table(), thread_record()
    if as_json:
        click.echo(json.dumps({"environment": env, "variants": variants, "load_average": load_average(),
                               "threads": threads}, indent=2))
        return
    click.echo("Variants:")
    for row in variants:
        click.echo(f"  {row['variant']:6s} image {row['image_size']:5d}  params {row['params_m']:8.2f} M"
                   f"  (encoder {row['encoder_params_m']:.2f} M)  {row['checkpoint'] or 'edgesam small variant'}")
    cpu = env.pop("cpu")
    click.echo("CPU:")
    click.echo(f"  {'model':24s} {cpu['model']}")
    click.echo(f"  {'logical cpus':24s} {cpu['logical_cpus']}   load average {load_average()}")
    for flag in CPU_FLAGS:
        value = cpu["flags"][flag]
        click.echo(f"  {flag:24s} {'unknown' if value is None else 'yes' if value else 'no'}")
    click.echo(f"  {'best matrix tier':24s} {cpu['isa']}")
    click.echo(f"  {'threads':24s} {threads_line(threads)}")

    for note in cpu_notes(cpu):
        click.echo(f"  {note}")
    click.echo("Environment:")
    for key, value in env.items():
        click.echo(f"  {key:24s} {value}")
