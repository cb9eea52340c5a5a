"""The light layers import without torch (design.md: "stats knows nothing of torch").

Loading torch takes seconds; the CLI's start-up (``unlearn-audit verify`` is a CI gate), reading a
config and the pure-numpy statistics, attacks and reports must not pay for it. Each module is
imported in a fresh interpreter, because any earlier test may already have loaded torch here.

The import-linter contracts in ``pyproject.toml`` (the layering itself, and no torch at all below
the attacks) are checked by ``lint-imports``, which ``make test`` runs before pytest.
"""

import importlib.util
import pkgutil
import subprocess
import sys

import pytest

#: Modules that must import without torch.
TORCH_FREE = ["unlearn_audit", "unlearn_audit.cli", "unlearn_audit.config", "unlearn_audit.errors",
              "unlearn_audit._io", "unlearn_audit.params", "unlearn_audit.results", "unlearn_audit.stats",
              "unlearn_audit.tolerance", "unlearn_audit.verify"]
#: Packages every module of which must import without torch (one interpreter per package).
TORCH_FREE_PACKAGES = ["unlearn_audit.attacks", "unlearn_audit.report"]


def _package_modules(package: str) -> str:
    locations = importlib.util.find_spec(package).submodule_search_locations
    return " ".join([package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules(locations)])


# Runs in the fresh interpreter: import the modules, and if torch got loaded, show where from (the
# stack at the moment torch was first looked for), so the failure names the offending import.
_PROBE = """
import importlib, sys, traceback

class WhoImportsTorch:
    stack = None

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in ("torch", "torchvision") and cls.stack is None:
            frames = [f for f in traceback.extract_stack()[:-1] if not f.filename.startswith("<")]
            cls.stack = "".join(traceback.format_list(frames))
        return None  # let the real finders import it: this only watches

sys.meta_path.insert(0, WhoImportsTorch)
for name in sys.argv[1].split():
    importlib.import_module(name)
if "torch" in sys.modules or "torchvision" in sys.modules:
    sys.exit("torch was imported here:\\n" + (WhoImportsTorch.stack or "(no stack recorded)"))
"""


@pytest.mark.parametrize("modules", TORCH_FREE + [pytest.param(_package_modules(p), id=f"{p}.*")
                                                   for p in TORCH_FREE_PACKAGES])
def test_imports_without_torch(modules):
    done = subprocess.run([sys.executable, "-c", _PROBE, modules], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"importing {modules} loaded torch or failed:\n{done.stderr}"


def test_the_probe_sees_torch():
    """The check above can fail: a module that needs torch is caught, with the line that imports it."""
    done = subprocess.run([sys.executable, "-c", _PROBE, "unlearn_audit.training.loop"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0
    assert "torch was imported here" in done.stderr and "training/loop.py" in done.stderr
