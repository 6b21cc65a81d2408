"""Every shell command that README.md and docs/*.md show runs, as written, on the tests' fake data.

The commands are read from the docs' code blocks, so a command added later is run too. Placeholders (DIR,
`outputs/<task>/runs/<time>/...`, `<sweep dir>`, `...`) become the fake data folder and run folders made
here; tiny budgets are added (a few batches, a few samples, the first value of a sweep's seeds). A command
runs in the fast suite unless MARKS names it `slow` (`make test-slow` runs it) or `skip`, with the reason.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ROOT, SMALL_EVAL, write_fake_imagenette, write_fake_mnist
from omegaconf import OmegaConf

from genlab import run_dir

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: code blocks read as shell (an untagged block holds shell commands too, or none: a file tree)
SHELL_LANGUAGES = {"bash", "sh", "shell", "console", ""}
COMMAND = re.compile(
    r"^(?:\$ )?(?:[A-Z_]+=\S*\s+)*(python (?:train|evaluate|generate|compare)\.py|python -m \S+|make)\b"
)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

SLURM = "needs a SLURM cluster (submitit submits the jobs)"
LONG_SWEEP = "a whole grid as written: many jobs, each a real training run"
RESULT = "reproduces a measured result: long runs on the real data as written"
#: (doc file, regex on the command, kind, reason): kind `slow` runs in `make test-slow` only, `skip` never.
#: Every other documented command runs in the fast suite.
MARKS: list[tuple[str, str, str, str]] = [
    ("README.md", r"^make install", "skip", "creates a venv and installs from the package index"),
    ("README.md", r"^make test$", "skip", "the test suite itself"),
    ("README.md", r"-m sweep=", "slow", LONG_SWEEP),
    ("docs/sweeps.md", r"-m (sweep|hparams_search)=", "slow", LONG_SWEEP),
    (
        "docs/sweeps.md",
        r"evaluate\.py -m",
        "slow",
        "an evaluation per sweep job; README's evaluate.py runs fast",
    ),
    ("docs/training.md", r"hydra\.launcher\.timeout_min=", "skip", SLURM),
    ("docs/results.md", r".", "slow", RESULT),
    ("docs/evaluation.md", r"n_samples=10000", "slow", "a long evaluation as written; README's runs fast"),
    (
        "docs/evaluation.md",
        r"ema=false|data\._target_=",
        "slow",
        "variants of the evaluation above; tests/test_evaluate.py runs ema=false and a named data module",
    ),
]


@dataclass(frozen=True)
class Command:
    doc: str  # path relative to the repository root
    line: int
    text: str  # comments stripped, continuation lines joined
    block: int  # index of its code block in the doc (a sweep resumed refers to the one above it)

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def strip_comment(line: str) -> str:
    """The line without a trailing `# ...` (a `#` outside quotes, after a space)."""
    for match in re.finditer(r"\s#", line):
        head = line[: match.start()]
        try:
            shlex.split(head)
        except ValueError:  # inside quotes
            continue
        return head.rstrip()
    return line.rstrip()


def documented_commands() -> list[Command]:
    """Every command line of every shell code block of the docs, in order."""
    found = []
    for path in DOCS:
        text = path.read_text()
        for block_index, block in enumerate(FENCE.finditer(text)):
            if block.group(1) not in SHELL_LANGUAGES:
                continue
            first_line = text[: block.start(2)].count("\n") + 1
            lines = block.group(2).splitlines()
            i = 0
            while i < len(lines):
                start, line = i, lines[i]
                while line.rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    line = line.rstrip()[:-1].rstrip() + " " + lines[i].strip()
                i += 1
                line = strip_comment(line.strip())
                if COMMAND.match(line):
                    found.append(
                        Command(
                            str(path.relative_to(ROOT)),
                            first_line + start,
                            line.removeprefix("$ "),
                            block_index,
                        )
                    )
    return found


COMMANDS = documented_commands()


def mark_of(command: Command) -> tuple[str, str] | None:
    for doc, pattern, kind, reason in MARKS:
        if command.doc == doc and re.search(pattern, command.text):
            return kind, reason
    return None


def params() -> list:
    out = []
    for command in COMMANDS:
        mark = mark_of(command)
        marks = []
        if mark and mark[0] == "slow":
            marks.append(pytest.mark.slow)
        elif mark:
            marks.append(pytest.mark.skip(reason=mark[1]))
        out.append(pytest.param(command, marks=marks, id=command.id))
    return out


# ---------------------------------------------------------------------------------------------------------
# The workspace: fake data holding both datasets, and the runs the commands refer to


def env() -> dict[str, str]:
    paths = [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "OMP_NUM_THREADS": "1",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "CUDA_VISIBLE_DEVICES": "",
    }


def shell(command: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout
    )


def check(result: subprocess.CompletedProcess, command: str) -> None:
    assert result.returncode == 0, (
        f"`{command}` exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n"
        f"--- stderr\n{result.stderr[-4000:]}"
    )


#: a training run of a few batches (++: some presets set the key already)
TRAIN_BUDGET = {
    "trainer.max_epochs": "1",
    "++trainer.limit_train_batches": "2",
    "trainer.limit_val_batches": "1",
    "data.batch_size": "8",
}
EVAL_BUDGET = dict(item.split("=", 1) for item in SMALL_EVAL) | {"classifier": "false"}
GENERATE_BUDGET = {
    "device": "cpu",
    "inversion.steps": "3",
    "inversion.restarts": "1",
    "inversion.refine_steps": "2",
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The folder commands run in: `data/` holds both fake datasets side by side (the documented layout,
    and train.py's default data_dir), with MNIST's full 5,000-image validation split."""
    root = tmp_path_factory.mktemp("docs_commands")
    write_fake_mnist(root / "data", n_train=5100, n_test=100)
    write_fake_imagenette(root / "data", n_train=6, n_val=2)
    return root


def train(workspace: Path, *overrides: str) -> None:
    budget = " ".join(f"{k}={v}" for k, v in TRAIN_BUDGET.items())
    command = f"python {ROOT / 'train.py'} {' '.join(overrides)} {budget}"
    check(shell(command, workspace), command)


@pytest.fixture(scope="module")
def runs(workspace) -> dict[str, Path]:
    """A tiny VAE and GAN run, separately trained under outputs/docs/runs/."""
    found = {}
    for model in ("vae", "gan"):
        before = set((workspace / "outputs/docs/runs").glob("*"))
        train(workspace, f"model={model}", "task_name=docs")
        (found[model],) = set((workspace / "outputs/docs/runs").glob("*")) - before
    return found


@pytest.fixture(scope="module")
def sweep(workspace) -> Path:
    """A real sweep folder: the VAE and the GAN, one job each."""
    folder = workspace / "outputs/docs/multiruns/sweep"
    train(workspace, "-m", "model=vae,gan", "task_name=docs", f"hydra.sweep.dir={folder}")
    return folder


# ---------------------------------------------------------------------------------------------------------
# Placeholders and budgets


def set_values(text: str, values: dict[str, str]) -> str:
    """`text` with each `key=value` set: an existing override of the key is replaced, else it is added."""
    for key, value in values.items():
        bare = key.lstrip("+")
        pattern = re.compile(rf"(?<=\s)\+*{re.escape(bare)}=\S+")
        if pattern.search(text):
            text = pattern.sub(f"{key}={value}".replace("\\", r"\\"), text, count=1)
        else:
            text += f" {key}={value}"
    return text


def first_values(text: str, keep: tuple[str, ...] = ("model", "data", "experiment")) -> str:
    """A sweep narrowed to the first value of each swept key but `keep`: `seed=0,1,2` -> `seed=0`."""

    def narrow(match: re.Match) -> str:
        key, values = match.group(1), match.group(2)
        return match.group(0) if key in keep else f"{key}={values.split(',')[0]}"

    return re.sub(r"(?<=\s)([\w.]+)=([^\s'()]+,[^\s'()]+)", narrow, text)


def sweep_grid_narrowed(text: str) -> str:
    """The swept keys of a `sweep=<name>` preset not on the command line, at their first value."""
    match = re.search(r"(?<=\s)sweep=(\w+)", text)
    if not match:
        return text
    grid = OmegaConf.load(ROOT / "conf/sweep" / f"{match.group(1)}.yaml").hydra.sweeper.params
    extra = {
        key: str(values).split(",")[0]
        for key, values in grid.items()
        if key not in ("model", "data", "experiment") and not re.search(rf"(?<=\s){re.escape(key)}=", text)
    }
    return set_values(text, extra)


class Resolver:
    """Turns a documented command into one that runs here, in the workspace."""

    def __init__(self, request: pytest.FixtureRequest, workspace: Path, command: Command):
        self.request, self.workspace, self.command = request, workspace, command
        self.slug = re.sub(r"\W+", "_", command.id)

    def run_folder(self, text: str) -> Path:
        runs = self.request.getfixturevalue("runs")
        return runs["gan" if "ema=false" in text or "gan_ckpt=" in text else "vae"]

    def sweep_dir_of(self, command: Command) -> Path:
        return self.workspace / "sweeps" / re.sub(r"\W+", "_", command.id)

    def resolve(self, text: str) -> str:
        ws, data = self.workspace, self.workspace / "data"
        text = text.replace("data.data_dir=DIR", f"data.data_dir={data}")
        text = re.sub(r"(?<=\s)out=DIR\b", f"out={ws / 'out' / self.slug}", text)
        if "<task>/runs/<time>" in text or "R/" in text or "ckpt_path=..." in text:
            run = self.run_folder(text)
            text = text.replace("outputs/<task>/runs/<time>", str(run)).replace(
                "ckpt_path=...", f"ckpt_path={run}/checkpoints/last.ckpt"
            )
            text = re.sub(r"(?<=[\s=])R/", f"{run}/", text)
        if re.search(r"outputs/<task>/runs(\s|$)", text):
            self.request.getfixturevalue("runs")
            text = re.sub(r"outputs/<task>/runs(?=\s|$)", str(ws / "outputs/docs/runs"), text)
        text = re.sub(r"(?<=\s)\.\.\.(?=\s|$)", "", text)  # "and the rest of the command above"
        sweep_dir = re.search(r"hydra\.sweep\.dir=(\S*<time>\S*)", text)
        if sweep_dir:  # a sweep resumed: the folder of the sweep above it in the same block
            above = [c for c in COMMANDS if c.doc == self.command.doc and c.block == self.command.block]
            previous = above[above.index(self.command) - 1]
            text = text.replace(sweep_dir.group(0), f"hydra.sweep.dir={self.sweep_dir_of(previous)}")
        if re.search(r"<sweep dir>|multiruns/<\w+>", text):
            folder = self.request.getfixturevalue("sweep")
            text = text.replace("<sweep dir>", str(folder))
            text = re.sub(r"outputs/\S+/multiruns/<\w+>", str(folder), text, count=1)
            if re.search(r"multiruns/<\w+>", text):  # a second part of the grid: a copy of the same sweep
                second = ws / "outputs/docs/multiruns/part2"
                if not second.exists():
                    shutil.copytree(folder, second)
                text = re.sub(r"outputs/\S+/multiruns/<\w+>", str(second), text)
        text = text.replace("<task>", "docs")
        return self.budget(text)

    def budget(self, text: str) -> str:
        if text.startswith("make") or re.match(r"[A-Z_]+=\S*\s+make", text):
            return text.replace("make ", f"make -f {ROOT / 'Makefile'} VENV={sys.prefix} ", 1)
        text = re.sub(r"python (train|evaluate|generate|compare)\.py", rf"python {ROOT}/\1.py", text)
        if "--cfg" in text or "compare.py" in text:
            return text
        if "/train.py" in text:
            text = set_values(text, TRAIN_BUDGET)
            if re.search(r"(?<=\s)ckpt_path=", text):  # a resumed run trains one epoch more
                text = set_values(text, {"trainer.max_epochs": "2"})
            if " -m " in text:
                text = sweep_grid_narrowed(first_values(text))
                if "hparams_search=" in text:
                    text = set_values(text, {"hydra.sweeper.n_trials": "1"})
                if "hydra.sweep.dir=" not in text:
                    text += f" hydra.sweep.dir={self.sweep_dir_of(self.command)}"
            return text
        if "/evaluate.py" in text:
            return set_values(text, EVAL_BUDGET)
        if "/generate.py" in text:
            return set_values(text, GENERATE_BUDGET)
        return text


# ---------------------------------------------------------------------------------------------------------
# The tests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def run_tensorboard(command: str, cwd: Path) -> None:
    """`make tensorboard` serves until stopped: it must print its URL, then TensorBoard must serve there."""
    port = free_port()
    process = subprocess.Popen(
        ["bash", "-c", f"{command} TENSORBOARD_PORT={port}"],
        cwd=cwd,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stop = threading.Timer(60, os.killpg, (process.pid, signal.SIGTERM))
    stop.start()
    lines = []
    try:
        assert process.stdout is not None
        for line in process.stdout:  # ends when the process does (or the timer stops it)
            lines.append(line)
            if f"http://localhost:{port}/" in line:  # TensorBoard's own line: it serves
                break
    finally:
        stop.cancel()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.communicate(timeout=20)
    out = "".join(lines)
    assert f"TensorBoard at http://localhost:{port} " in out, out
    assert f"http://localhost:{port}/" in out, f"TensorBoard did not start:\n{out}"


@pytest.mark.parametrize("command", params())
def test_documented_command_runs(command: Command, workspace, request, one_thread):
    text = Resolver(request, workspace, command).resolve(command.text)
    leftover = re.findall(r"<[\w ]+>|\bDIR\b|/path/to/", text)
    assert not leftover, (
        f"{command.id}: teach tests/test_docs_commands.py the placeholders {leftover}: {text}"
    )
    if re.search(r"\bmake\b.*\btensorboard\b", text):
        run_tensorboard(text, workspace)
        return
    check(shell(text, workspace), f"{command.id}: {text}")
    sweep_dir = re.search(r"/train\.py -m .*hydra\.sweep\.dir=(\S+)", text)
    if sweep_dir and "hparams_search=" not in text:  # a sweep isolates failures: each job must have finished
        folder = workspace / sweep_dir.group(1)
        jobs = [p.parent.parent for p in folder.glob(f"*/{run_dir.HYDRA}/{run_dir.HYDRA_OVERRIDES}")]
        unfinished = [job.name for job in jobs if not (job / run_dir.FINISHED).is_file()]
        assert jobs and not unfinished, f"{command.id}: jobs {unfinished} of {folder} did not finish: {text}"


def test_the_docs_show_commands_and_every_mark_is_used():
    """A mark that matches no command any more (the docs changed) must go; the docs' commands are found."""
    assert len(COMMANDS) > 20 and {c.doc for c in COMMANDS} >= {"README.md", "docs/training.md"}
    for doc, pattern, _, _ in MARKS:
        assert any(c.doc == doc and re.search(pattern, c.text) for c in COMMANDS), (doc, pattern)
    names = {shlex.split(c.text)[-1] for c in COMMANDS if c.text.startswith("make ")}
    makefile = (ROOT / "Makefile").read_text()
    assert all(re.search(rf"^{name}:", makefile, re.M) for name in names), names


def test_a_folder_of_separate_runs_is_compared(runs, workspace):
    """`python compare.py outputs/<task>/runs` reads the separately trained runs, as a sweep's."""
    folder = workspace / "outputs/docs/runs"
    command = f"python {ROOT / 'compare.py'} {folder} --out {workspace / 'separate_report'}"
    check(shell(command, workspace), command)
    runs_csv = (workspace / "separate_report" / "runs.csv").read_text().splitlines()
    assert len(runs_csv) == 1 + len(runs), runs_csv
