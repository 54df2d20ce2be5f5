"""CPU feature detection: what every bundle, report and benchmark records about the machine."""
from __future__ import annotations

from edgesam_runtime import envinfo

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8 avx_vnni
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
"""
ZEN3 = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma
"""


def parse(text, tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return envinfo.parse_cpu(*envinfo._read_cpuinfo(str(path)))


def test_amx_machine(tmp_path):
    cpu = parse(SAPPHIRE_RAPIDS, tmp_path)
    assert cpu["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert all(cpu["flags"].values()) and cpu["amx"] and cpu["isa"] == "amx"
    assert envinfo.has_int8_dot(cpu) and envinfo.has_bf16_math(cpu)
    assert "no " not in envinfo.describe_cpu(cpu)


def test_avx2_only_machine(tmp_path):
    cpu = parse(ZEN3, tmp_path)
    assert cpu["flags"]["avx2"] and not any(v for k, v in cpu["flags"].items() if k != "avx2")
    assert cpu["isa"] == "avx2" and cpu["amx"] is False
    assert not envinfo.has_int8_dot(cpu) and not envinfo.has_bf16_math(cpu)
    assert envinfo.describe_cpu(cpu) == ("AMD EPYC 7B13: avx2; no avx512f, avx512_vnni, avx_vnni, avx512_bf16, "
                                         "amx_tile, amx_bf16, amx_int8")


def test_unknown_flags_are_none_not_false(tmp_path):
    cpu = envinfo.parse_cpu("Some CPU", None)
    assert set(cpu["flags"].values()) == {None} and cpu["isa"] == "unknown" and cpu["amx"] is None
    assert envinfo._read_cpuinfo(str(tmp_path / "absent")) == (None, None)


def test_this_machine_is_recorded_everywhere():
    env = envinfo.environment()
    assert env["cpu"]["model"] and set(env["cpu"]["flags"]) == set(envinfo.CPU_FLAGS)
    state = envinfo.machine_state()
    assert state["cpu"] == env["cpu"] and len(state["load_average"]) == 3
