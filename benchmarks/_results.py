"""Benchmark figures on record: what a script printed, with the date, the machine and the versions.

A measured figure without its machine is a claim nobody can check, and one copied onto the README
goes stale with the next change. Every script in ``benchmarks/`` runs its ``main`` under
:func:`recorded`::

    if __name__ == "__main__":
        from _results import recorded

        with recorded(__file__):
            main()

which shows the output as usual and, when ``main`` returns, rewrites ``docs/results/<script>.md``:
the command line, the UTC date, the machine (CPU model, cores, memory, load at the start, GPUs),
the versions (python, torch, numpy, scipy, unlearn-audit and the git commit) and the output
verbatim. A run that fails, is interrupted or only prints ``--help`` leaves the last page as it
was. ``UNLEARN_AUDIT_RESULTS_DIR`` writes the pages elsewhere (e.g. ``$OUT`` on a device machine,
whose working tree does not come back); an empty value writes none.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "docs" / "results"


class _Tee(io.TextIOBase):
    """A text stream that writes to the terminal and keeps a copy."""

    def __init__(self, terminal):
        self.terminal, self.copy = terminal, io.StringIO()

    def write(self, text: str) -> int:
        self.terminal.write(text)
        return self.copy.write(text)

    def flush(self) -> None:
        self.terminal.flush()


@contextlib.contextmanager
def recorded(script: str):
    """Run the block with stdout kept; on success write the results page of ``script``."""
    target = os.environ.get("UNLEARN_AUDIT_RESULTS_DIR", str(DEFAULT_DIR))
    header = {"command": "python " + shlex.join([os.path.relpath(script, ROOT), *sys.argv[1:]]),
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "load": _load_average()}
    tee, start = _Tee(sys.stdout), time.perf_counter()
    with contextlib.redirect_stdout(tee):
        yield
    if not target:
        return
    header["run time"] = f"{time.perf_counter() - start:.0f} s"
    path = Path(target) / f"{Path(script).stem}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(results_page(script, header, tee.copy.getvalue()), encoding="utf-8")
    print(f"results written to {path}", file=sys.stderr)


def results_page(script: str, header: dict, output: str) -> str:
    """The Markdown page: title, what the script measures, the facts of the run, the output."""
    doc = ast.get_docstring(ast.parse(Path(script).read_text(encoding="utf-8"))) or ""
    summary = " ".join(doc.split("\n\n")[0].split())
    rows = [("date", header["date"]), ("command", f"`{header['command']}`"),
            ("machine", machine(header["load"])), ("versions", versions()), ("run time", header["run time"])]
    return "\n".join([
        f"# {Path(script).stem}",
        "",
        summary,
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in rows),
        "",
        f"Written by `benchmarks/{Path(script).name}` through `benchmarks/_results.py`; run the command "
        "again to replace this page.",
        "",
        "```text",
        output.rstrip("\n"),
        "```",
        "",
    ])


def machine(load: str) -> str:
    """CPU model, cores, memory, load average at the start and GPUs, in one line."""
    parts = [_cpu_model(), f"{os.cpu_count()} CPUs"]
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) != os.cpu_count():
        parts[-1] += f" ({len(os.sched_getaffinity(0))} usable)"
    memory = _meminfo_gib()
    if memory:
        parts.append(f"{memory:.1f} GiB memory")
    if load:
        parts.append(f"load average {load} at the start")
    parts.append(f"GPU: {_gpus()}")
    return ", ".join(parts)


def versions() -> str:
    found = [f"python {platform.python_version()}"]
    for package in ("torch", "numpy", "scipy", "unlearn-audit"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package} not installed")
    revision = _git("rev-parse", "--short", "HEAD")
    if revision:
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        found.append(f"git {revision}{' with uncommitted changes' if dirty else ''}")
    return ", ".join(found)


def _cpu_model() -> str:
    """``model name`` (with the family and model numbers, which tell CPU generations apart) from
    /proc/cpuinfo; elsewhere what :mod:`platform` knows."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    if "cpu family" in fields:
        name += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    return name


def _meminfo_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    return None


def _load_average() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return f"{os.getloadavg()[0]:.1f}"  # the last minute's
    return ""


def _gpus() -> str:
    try:
        import torch
    except ImportError:
        return "unknown (torch not importable)"
    if not torch.cuda.is_available():
        return "none"
    return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
