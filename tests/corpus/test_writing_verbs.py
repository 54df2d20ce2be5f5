"""No verb deletes or replaces a file it did not create.

Every verb that writes is pointed at a folder of the user's own files (or at one of those files):
it must refuse with one error line naming the place and leave every file as it was, byte for byte.
With --overwrite the cheap verbs then write into that folder: they replace only the files they write
themselves and remove nothing.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgesam.cli.main import main
from edgesam.utils.outputs import OWNER_MARK

BOX = ("--box", "5,5,30,30")
# The user's files: names that edgesam's verbs also write (their outputs would replace them) and others.
USER_FILES = {
    "notes.txt": b"line 3: new camera on Monday\n",
    "part_mask.png": b"the user's own mask\n",          # predict writes <stem>_mask.png
    "config.yaml": b"camera: basler\n",                 # finetune and distill write config.yaml
    "report.md": b"# my report\n",                      # prune, distill and pipeline write report.md
    "manifest.json": b'{"mine": true}\n',               # export writes manifest.json
    "selection.json": b'{"mine": true}\n',              # calib build writes selection.json
    "merged.pth": b"the user's checkpoint\n",
    "p.pth": b"another of the user's checkpoints\n",
    "student.pth": b"yet another\n",
    "sub/keep.txt": b"nested\n",
}


def _user_folder(root: Path) -> Path:
    for name, data in USER_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _spec(corpus, folder: Path) -> Path:
    spec = folder.parent / "spec.yaml"
    spec.write_text(f"model: vit_t\nimage_size: 64\ndata: {corpus.data}\nfinetune: {{epochs: 1}}\n")
    return spec


# verb -> (args(corpus, user folder), what the error line must name)
WRITERS = {
    "predict": (lambda c, f: ["predict", c.picture, "--bundle", c.bundle, *BOX, "--out", f], "user"),
    "data synth": (lambda c, f: ["data", "synth", f, "--count", "2", "--size", "32"], "user"),
    "data check --json": (lambda c, f: ["data", "check", c.data, "--json", f / "notes.txt"], "notes.txt"),
    "calib build": (lambda c, f: ["calib", "build", c.data / "images", f, "--count", "2"], "user"),
    "export": (lambda c, f: ["export", "--checkpoint", c.checkpoint, "--out", f, "--quiet"], "user"),
    "finetune": (lambda c, f: ["finetune", "--model", "vit_t", "--init", "random", "--image-size", "64",
                               "--epochs", "1", "--data", c.data, "--out", f], "user"),
    "merge": (lambda c, f: ["merge", f / "sub", "--out", f / "merged.pth"], "merged.pth"),
    "prune --out": (lambda c, f: ["prune", "--checkpoint", c.checkpoint, "--ratio", "0.25", "--out", f / "p.pth",
                                  "--latency-runs", "0"], "p.pth"),
    "prune --run-dir": (lambda c, f: ["prune", "--checkpoint", c.checkpoint, "--ratio", "0.25",
                                      "--out", f.parent / "new.pth", "--run-dir", f, "--latency-runs", "0"], "user"),
    "distill --out": (lambda c, f: ["distill", "--teacher", c.checkpoint, "--images", c.data, "--out", f / "student.pth",
                                    "--run-dir", f.parent / "distill_run", "--epochs", "1"], "student.pth"),
    "distill --run-dir": (lambda c, f: ["distill", "--teacher", c.checkpoint, "--images", c.data,
                                        "--out", f.parent / "s.pth", "--run-dir", f, "--epochs", "1"], "user"),
    "eval --out": (lambda c, f: ["eval", "--checkpoint", c.checkpoint, "--data", c.data, "--out", f], "user"),
    "bench --out": (lambda c, f: ["bench", c.bundle, "--data", c.data, "--reference", c.checkpoint,
                                  "--max-images", "1", "--out", f], "user"),
    "check --out": (lambda c, f: ["check", c.bundle, "--data", c.data, "--reference", c.checkpoint,
                                  "--max-images", "1", "--min-iou", "0.0", "--out", f], "user"),
    "demo": (lambda c, f: ["demo", "--out", f], "user"),
    "pipeline -c": (lambda c, f: ["pipeline", "-c", _spec(c, f), "--out", f], "user"),
}


@pytest.mark.parametrize("verb", sorted(WRITERS))
def test_a_writing_verb_leaves_a_folder_of_user_files_untouched(corpus, verb, tmp_path):
    folder = _user_folder(tmp_path / "user")
    make_args, culprit = WRITERS[verb]
    before = _digest(folder)
    result = CliRunner().invoke(main, [str(a) for a in make_args(corpus, folder)])
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
    assert culprit in errors[0] and "--overwrite" in errors[0], errors[0]
    assert _digest(folder) == before  # nothing replaced, removed or added


# verb -> the user files it replaces with --overwrite (it writes files of those names)
OVERWRITING = {
    "predict": {"part_mask.png"},
    "data synth": set(),
    "calib build": {"selection.json"},
    "export": {"manifest.json"},
    "data check --json": {"notes.txt"},
}


@pytest.mark.parametrize("verb", sorted(OVERWRITING))
def test_overwrite_replaces_only_what_the_verb_writes_and_removes_nothing(corpus, verb, tmp_path):
    folder = _user_folder(tmp_path / "user")
    before = _digest(folder)
    make_args, _ = WRITERS[verb]
    result = CliRunner().invoke(main, [str(a) for a in make_args(corpus, folder)] + ["--overwrite"])
    assert result.exit_code == 0, result.output
    after = _digest(folder)
    replaced = OVERWRITING[verb]
    assert set(before) <= set(after), f"removed: {set(before) - set(after)}"
    assert {k: v for k, v in after.items() if k in before and k not in replaced} == \
        {k: v for k, v in before.items() if k not in replaced}
    assert all(after[name] != before[name] for name in replaced)  # it did write its own file
    assert OWNER_MARK not in after  # a folder the user filled does not become edgesam's


def test_a_verb_writes_again_into_its_own_folder_but_not_into_another_verbs(corpus, tmp_path):
    out = tmp_path / "pred"
    args = ["predict", str(corpus.picture), "--bundle", str(corpus.bundle), *BOX, "--out", str(out)]
    assert CliRunner().invoke(main, args).exit_code == 0
    (out / "part_mask.png").unlink()
    result = CliRunner().invoke(main, args)  # its own folder (OWNER_MARK): a rerun needs no flag
    assert result.exit_code == 0 and (out / "part_mask.png").is_file(), result.output
    other = CliRunner().invoke(main, ["data", "synth", str(out), "--count", "1", "--size", "32"])
    assert other.exit_code == 1 and "written by `edgesam predict`" in other.output


def test_a_failed_verb_leaves_no_output_folder_behind(corpus, tmp_path):
    out = tmp_path / "pred"
    result = CliRunner().invoke(main, ["predict", str(corpus.picture), "--bundle", str(corpus.bundle),
                                       "--box", "40,30,10,5", "--out", str(out)])  # an inverted box
    assert result.exit_code == 1 and "x0 <= x1" in result.output, result.output
    assert not out.exists()
