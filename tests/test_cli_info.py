"""`edgesam info` and the verb list."""
import pytest
import json

from click.testing import CliRunner

from edgesam.cli.main import COMMANDS, main


@pytest.mark.slow
def test_info_reports_variants_and_versions():
    result = CliRunner().invoke(main, ["info", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    params = {row["variant"]: row["params_m"] for row in payload["variants"]}
    assert 93.0 < params["vit_b"] < 94.5  # SAM ViT-B: 93.7 M parameters
    assert params["vit_t"] < 10
    assert payload["environment"]["torch"] and "CPUExecutionProvider" in payload["environment"]["onnxruntime_providers"]
    flags = payload["environment"]["cpu"]["flags"]
    assert set(flags) == {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"}
    table = CliRunner().invoke(main, ["info"])
    assert table.exit_code == 0 and "CPU:" in table.output
    for flag in flags:
        assert f"  {flag} " in table.output
    assert "int8: " in table.output and "bf16: " in table.output  # what the flags mean for the graph sets
    record = payload["threads"]  # how many threads ran and why
    assert record["threads"] >= 1 and record["why"].startswith(f"{record['threads']} thread")
    assert "  threads " in table.output and "cores busy now" in table.output


def test_every_registered_verb_imports_and_has_an_example():
    runner = CliRunner()
    for name in main.list_commands(None):
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Example" in result.output or "Commands:" in result.output, name
    assert {"finetune", "export", "bench", "predict"} <= set(COMMANDS)
