"""Thread sizing: every usable core unless told otherwise, never shrunk by a lagging load average."""
from __future__ import annotations

import os

import pytest

from edgesam_runtime import threads


@pytest.fixture
def two_idle_cores_after_a_busy_minute(monkeypatch, tmp_path):
    """A 2-core machine whose one-minute load average still says 1.9 (a job ended a second ago) and
    whose /proc/stat says both cores are idle now."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (1.9, 1.2, 0.6))
    samples = iter([
        "cpu  300 0 100 900 0 0 0 0 0 0\ncpu0 150 0 50 450 0 0 0 0 0 0\ncpu1 150 0 50 450 0 0 0 0 0 0\n",
        "cpu  301 0 100 1099 0 0 0 0 0 0\ncpu0 151 0 50 549 0 0 0 0 0 0\ncpu1 150 0 50 550 0 0 0 0 0 0\n",
    ])
    stat = tmp_path / "stat"

    def next_sample(path, cpus):
        stat.write_text(next(samples))
        return original(str(stat), cpus)

    original = threads._cpu_times
    monkeypatch.setattr(threads, "_cpu_times", next_sample)
    for name in (threads.ENV_THREADS, "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_chosen", None)


def test_a_command_started_after_a_busy_minute_on_an_idle_machine_uses_every_core(two_idle_cores_after_a_busy_minute):
    choice = threads.choose_threads()
    assert choice.threads == 2 and choice.source == "usable cores"
    record = threads.thread_record(sample_s=0.0)
    assert record["threads"] == 2 and record["usable_cores"] == 2
    assert record["busy_cores_now"] == 0.01  # 1 busy jiffy of 200 on 2 cores
    assert record["load_average"] == [1.9, 1.2, 0.6]  # recorded, not used
    assert "every usable core" in record["why"]


def test_the_count_follows_request_then_environment_then_the_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(threads, "_chosen", None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv(threads.ENV_THREADS, "auto")
    assert threads.cpu_threads() == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.choose_threads() == threads.ThreadChoice(3, "env:OMP_NUM_THREADS")
    monkeypatch.setenv(threads.ENV_THREADS, "2")
    assert threads.choose_threads() == threads.ThreadChoice(2, f"env:{threads.ENV_THREADS}")
    assert threads.choose_threads(requested=4) == threads.ThreadChoice(4, "request")
    monkeypatch.setenv(threads.ENV_THREADS, "many")
    with pytest.raises(ValueError, match="EDGESAM_THREADS"):
        threads.cpu_threads()


def test_busy_cores_count_only_this_process_s_cores_and_survive_a_missing_proc(monkeypatch, tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu0 10 0 0 90 0 0 0 0\ncpu1 50 0 0 50 0 0 0 0\n")
    assert threads._cpu_times(str(stat), {1}) == (50, 100)
    assert threads._cpu_times(str(stat), None) == (60, 200)
    assert threads.busy_cores(0.0, str(tmp_path / "missing")) is None


def test_training_spins_unless_the_user_chose_a_wait_policy(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(threads, "_policy_is_ours", False)
    with threads.configured(1):
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"  # edgesam's default for everything
        threads.spin_waiting()  # a training verb, before it imports torch
        assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert "OMP_WAIT_POLICY" not in os.environ  # put back as it was
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # the user's own choice is never overridden
    with threads.configured(1):
        threads.spin_waiting()
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
