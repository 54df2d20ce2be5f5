"""Every verb that reads files, against every bad input of the corpus that verb reads.

Each case must end with exit code 1 and one line that names the culprit (`Error: ...`; `data check`
lists every bad file, one `error:` line each), print no traceback, run no code from a checkpoint, and
leave every file it was given exactly as it was.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgesam.cli.main import main
from tests.corpus.corpus import CATALOG, TOO_MANY

BOX = ("--box", "5,5,30,30")


def _verbs():
    """kind -> {verb label: args(bad input, corpus, out folder)}."""
    return {
        "image": {
            "predict --checkpoint": lambda i, c, o: ["predict", i.path, "--checkpoint", c.checkpoint, *BOX, "--out", o],
            "predict --bundle": lambda i, c, o: ["predict", i.path, "--bundle", c.bundle, *BOX, "--out", o],
        },
        "images_folder": {
            "calib build": lambda i, c, o: ["calib", "build", i.path, o / "calib", "--count", "2"],
            "distill --images": lambda i, c, o: _distill(c.checkpoint, i.path, o),
        },
        "dataset": {
            "data check": lambda i, c, o: ["data", "check", i.path],
            "finetune --data": lambda i, c, o: ["finetune", "--model", "vit_t", "--init", "random", "--image-size", "64",
                                                "--epochs", "1", "--data", i.path, "--out", o / "run"],
            "eval --data": lambda i, c, o: ["eval", "--checkpoint", c.checkpoint, "--data", i.path],
            "bench --data": lambda i, c, o: ["bench", c.bundle, "--data", i.path, "--reference", c.checkpoint,
                                             "--max-images", "1"],
            "prune --recover-data": lambda i, c, o: ["prune", "--checkpoint", c.checkpoint, "--ratio", "0.25",
                                                     "--out", o / "p.pth", "--recover-data", i.path,
                                                     "--recover-epochs", "1", "--latency-runs", "0"],
            "distill --images": lambda i, c, o: _distill(c.checkpoint, i.path, o),
        },
        "checkpoint": {
            "predict --checkpoint": lambda i, c, o: ["predict", c.picture, "--checkpoint", i.path, *BOX, "--out", o],
            "export --checkpoint": lambda i, c, o: ["export", "--checkpoint", i.path, "--out", o / "bundle", "--quiet"],
            "eval --checkpoint": lambda i, c, o: ["eval", "--checkpoint", i.path, "--data", c.data],
            "finetune --checkpoint": lambda i, c, o: ["finetune", "--model", "vit_t", "--checkpoint", i.path,
                                                      "--data", c.data, "--out", o / "run"],
            "prune --checkpoint": lambda i, c, o: ["prune", "--checkpoint", i.path, "--ratio", "0.25",
                                                   "--out", o / "p.pth", "--latency-runs", "0"],
            "bench --reference": lambda i, c, o: ["bench", c.bundle, "--data", c.data, "--reference", i.path,
                                                  "--max-images", "1"],
            "distill --teacher": lambda i, c, o: _distill(i.path, c.data, o),
        },
        "bundle": {
            "predict --bundle": lambda i, c, o: ["predict", c.picture, "--bundle", i.path, *BOX, "--out", o],
            "bench": lambda i, c, o: ["bench", i.path, "--data", c.data, "--reference", c.checkpoint, "--max-images", "1"],
            "check": lambda i, c, o: ["check", i.path, "--data", c.data, "--reference", c.checkpoint,
                                      "--max-images", "1", "--min-iou", "0.5"],
        },
        "prompts": {
            "predict --checkpoint": lambda i, c, o: ["predict", c.picture, "--checkpoint", c.checkpoint, *i.args,
                                                     "--out", o],
            "predict --bundle": lambda i, c, o: ["predict", c.picture, "--bundle", c.bundle, *i.args, "--out", o],
        },
        "run_dir": {
            "merge": lambda i, c, o: ["merge", i.path, "--out", o / "merged.pth"],
        },
        "spec": {
            "pipeline -c": lambda i, c, o: ["pipeline", "-c", i.path, "--out", o / "pipeline"],
        },
    }


def _distill(teacher, images, out):
    return ["distill", "--teacher", teacher, "--images", images, "--out", out / "student.pth", "--epochs", "1",
            "--views", "1", "--latency-runs", "0"]


# What is not a bad input for that verb: data check reports masks without objects as warnings (a set
# of defect-free surfaces is valid data); only training needs objects. A torch model has no prompt limit.
NOT_BAD = {("data check", "no object in any mask"), ("eval --data", "no object in any mask"),
           ("bench --data", "no object in any mask"), ("prune --recover-data", "no object in any mask")}
NOT_BAD |= {("predict --checkpoint", name) for name in TOO_MANY}
# A calibration set only copies images; a frame too elongated for a whole-image model is refused by what uses it.
NOT_BAD |= {("calib build", "30x5000 frame")}
# Distillation reads pixels only: masks without objects are fine, and a folder of pictures is a flat image folder.
NOT_BAD |= {("distill --images", "no object in any mask"), ("distill --images", "not a dataset")}


def _cases():
    for kind, verbs in _verbs().items():
        for verb in verbs:
            for name in CATALOG[kind]:
                if (verb, name) not in NOT_BAD:
                    yield pytest.param(kind, verb, name, id=f"{verb} | {kind}: {name}")


CASES = list(_cases())


@pytest.mark.slow
def test_the_corpus_is_large_enough_and_matches_its_catalog(corpus):
    assert sum(len(names) for names in CATALOG.values()) >= 80  # distinct bad inputs
    assert len(CASES) >= 40
    built = {}
    for kind, name in corpus.bad:
        built.setdefault(kind, set()).add(name)
    assert built == {kind: set(names) for kind, names in CATALOG.items()}


def _digest(path: Path) -> dict[str, tuple]:
    """Per file: its content hash when small; for large files (graphs, checkpoints) inode, size, and the
    modification and change times, which any write moves (and ctime cannot be set back by a program)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    out = {}
    for f in files:
        st = f.stat()
        if st.st_size <= 1 << 20:
            out[str(f)] = (hashlib.sha256(f.read_bytes()).hexdigest(),)
        else:
            out[str(f)] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return out


def _given_files(args, root: Path) -> dict[str, str]:
    """Hashes of every corpus file or folder named on the command line (the user's files)."""
    digest = {}
    for arg in args:
        path = Path(arg)
        if root in path.parents and path.exists():
            digest.update(_digest(path))
    return digest


@pytest.mark.parametrize("kind, verb, name", CASES)
def test_bad_input_gives_one_clear_error(corpus, kind, verb, name, tmp_path):
    bad = corpus.bad[(kind, name)]
    args = [str(a) for a in _verbs()[kind][verb](bad, corpus, tmp_path)]
    before = _given_files(args, corpus.root)
    result = CliRunner().invoke(main, args)
    output = result.output
    assert result.exit_code == 1, f"exit {result.exit_code}:\n{output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output, output
    assert "internal error" not in output, output
    assert not any(line.startswith("OK") for line in output.splitlines()), output  # no forged success line
    if verb == "data check":
        errors = [line for line in output.splitlines() if line.startswith("error: ")]
        assert errors and any(bad.culprit in line for line in errors), output
    else:
        errors = [line for line in output.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, output
        assert bad.culprit in errors[0], f"{bad.culprit!r} not named in: {errors[0]}"
    assert not corpus.marker.exists(), "a checkpoint's pickled code ran"
    assert _given_files(args, corpus.root) == before, "an input file was changed"
