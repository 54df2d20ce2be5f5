"""Bench report: a printed table, JSON, markdown and a PNG of latency against IoU (written atomically)."""
from __future__ import annotations

from pathlib import Path

from edgesam_runtime.envinfo import threads_line
from edgesam_runtime.files import atomic_path, write_json_atomic, write_text_atomic

COLUMNS = (
    ("format", "format", "{}"), ("backend", "backend", "{}"), ("ran as", "ran_as", "{}"), ("size MB", "size_bytes", "mb"),
    ("IoU ref mean", "iou_vs_reference.mean", "{:.4f}"), ("IoU ref p5", "iou_vs_reference.p5", "{:.4f}"),
    ("ref empty", "empty.reference", "of_prompts"), ("pred empty", "empty.prediction", "of_prompts"),
    ("task mIoU", "task_iou.mean", "{:.4f}"), ("enc p50 ms", "encoder_ms.p50", "{:.1f}"),
    ("enc p95 ms", "encoder_ms.p95", "{:.1f}"), ("enc spread", "encoder_ms.spread", "{:.0%}"),
    ("warm-up calls", "warmup", "warmup"), ("dec/prompt p50 ms", "decoder_per_prompt_ms.p50", "{:.2f}"),
    ("dec/prompt p95 ms", "decoder_per_prompt_ms.p95", "{:.2f}"), ("host/enc", "host_ms.fraction_of_encoder", "{:.1%}"),
    ("img/s", "images_per_s", "{:.2f}"), ("cold start ms", "cold_start_ms", "{:.0f}"),
)


def _get(row: dict, dotted: str):
    value = row
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _cell(row: dict, key: str, fmt: str) -> str:
    value = _get(row, key)
    if value is None:
        return "skipped" if row.get("skipped") and key != "format" else "-"
    if fmt == "warmup":  # "4" when the timings settled, "12 (not settled)" when the cap stopped it
        return "-" if not value else f"{value['calls']}" + ("" if value["settled"] else " (not settled)")
    if fmt == "mb":
        return f"{value / 1e6:.2f}"
    if fmt == "of_prompts":  # empty masks: "3/12", marked so a reader cannot miss them
        return f"{value}/{row['prompts']}" + (" !" if value else "")
    return fmt.format(value)


def table_rows(report: dict) -> list[list[str]]:
    return [[_cell(row, key, fmt) for _, key, fmt in COLUMNS] for row in report["formats"]]


def machine_lines(report: dict) -> list[str]:
    """The header every bench report starts with: the CPU and its flags, the load, what the flags mean
    for the graph sets, and the backend each graph set runs on by default and why."""
    machine = report.get("machine")
    if not machine:
        return []
    cpu = machine["cpu"]
    lines = [f"CPU: {machine['cpu_line']} (isa {cpu.get('isa')}, {cpu.get('logical_cpus')} logical CPUs); "
             f"load average {machine.get('load_average')} at start, {machine.get('load_average_end')} at end"]
    if machine.get("threads"):
        lines.append(f"threads: {threads_line(machine['threads'])}")
    lines += [f"  {note}" for note in machine.get("notes", [])]
    lines += [f"default for {name}: {d['backend']} ({d['why']})" for name, d in report.get("defaults", {}).items()]
    if any(not row.get("default", True) for row in report["formats"]):
        lines.append("rows named GRAPH_SET@BACKEND run the same graphs on a backend other than the default")
    return lines


def format_table(report: dict) -> str:
    header = [title for title, _, _ in COLUMNS]
    rows = table_rows(report)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"{row['format']}: skipped ({row['skipped']})" for row in report["formats"] if row.get("skipped")]
    return "\n".join(machine_lines(report) + [""] + lines + _floor_lines(report))


def _floor_lines(report: dict) -> list[str]:
    missed = report.get("floors", {}).get("missed", [])
    return [f"FLOOR MISSED: {m}" for m in missed]


def format_markdown(report: dict) -> str:
    header = [title for title, _, _ in COLUMNS]
    lines = [f"# edgesam bench: {report['bundle']}", "",
             f"Data: `{report['config']['data']}` ({report['images']} images, {report['prompts']} {report['config']['prompt']} "
             f"prompts, seed {report['config']['seed']}); reference: `{report['reference']}`.", "",
             *[f"- {line.strip()}" for line in machine_lines(report)], "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(report)]
    lines += ["", "`IoU ref` leaves out prompts where the reference and the format both output an empty mask; "
              "`ref empty` / `pred empty` count the prompts whose reference / own mask is empty (an IoU floor needs "
              ">= 90 % non-empty references). `task mIoU` is against the ground truth.",
              "Latencies are wall-clock on this host; `dec/prompt` is (prompt prep + decoder call + mask upscaling) "
              "divided by the prompts of the call; `host/enc` is host pre/post-processing over encoder time.",
              "Each format was warmed on the first image until its timings settled (`warm-up calls`; "
              "rule: the last 3 calls within 10 % of their median), then called once on an image of each prompt "
              "count in the plan (a backend compiling per call shape pays it there, as a running line has), before "
              "the plan was timed; `enc spread` is "
              "(p95 - p5) / p50 of the timed encoder calls.", ""]
    if (report.get("framing") or {}).get("mode") == "roi":
        lines += ["ROI framing: the encoder runs once per box on its crop, inside the segment call, so `enc` is only "
                  "the frame hand-over and `dec/prompt` holds each box's crop encoding.", ""]
    lines += [f"- {row['format']}: skipped ({row['skipped']})" for row in report["formats"] if row.get("skipped")]
    lines += [f"- **floor missed**: {m}" for m in report.get("floors", {}).get("missed", [])]
    lines += [f"- warning: {w}" for w in report.get("warnings", [])]
    env = report.get("environment", {})
    lines += ["", f"Note: {report['note']}." if report.get("note") else "",
              f"Command: `{report['command']}` (OPENBLAS_NUM_THREADS={report.get('openblas_threads', 'default')})"
              if report.get("command") else ""]
    lines += ["", "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items() if not isinstance(v, (list, dict)))]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for row in report["formats"]:
        if row.get("skipped"):
            continue
        iou = 1.0 if row["format"] == "pytorch" else _get(row, "iou_vs_reference.mean")
        if iou is None:  # every prompt empty on both sides: no IoU to place
            continue
        latency = _get(row, "encoder_ms.p50") + _get(row, "decoder_per_prompt_ms.p50")
        ax.scatter([latency], [iou])
        ax.annotate(row["format"], (latency, iou), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("encoder p50 + decoder per prompt p50 (ms)")
    ax.set_ylabel("mean mask IoU vs PyTorch reference")
    ax.set_title("latency against accuracy")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_report(report: dict, out_dir) -> dict:
    """bench.json, bench.md and bench.png under `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "bench.json", "markdown": out / "bench.md", "png": out / "bench.png"}
    write_json_atomic(paths["json"], report)
    write_text_atomic(paths["markdown"], format_markdown(report))
    plot(report, paths["png"])
    return {k: str(v) for k, v in paths.items()}
