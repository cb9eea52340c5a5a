"""The documentation stays true to the code.

* ``docs/methods.md`` and ``docs/attacks.md`` are what ``unlearn-audit methods|attacks --format
  markdown`` prints from the registries — a method, attack or parameter added without regenerating
  them fails here;
* the README stays short, opens with ``make demo`` and ``make test`` (targets the Makefile has), and
  every ``unlearn-audit …`` command it shows parses against the real CLI — a renamed option or
  subcommand fails here;
* its demo excerpt is copied from the recorded demo table, and every relative link in the README and
  under ``docs/`` leads to a file (and heading) that exists.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from unlearn_audit.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_LIMIT = 10 * 1024
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


# ---------------------------------------------------------------- generated registry pages
@pytest.mark.parametrize("command", ["methods", "attacks"])
def test_registry_pages_are_regenerated(command):
    result = CliRunner().invoke(main, [command, "--format", "markdown"])
    assert result.exit_code == 0, result.output
    page = DOCS / f"{command}.md"
    committed = page.read_text(encoding="utf-8") if page.exists() else ""
    assert committed == result.stdout, (
        f"docs/{command}.md is stale: run `unlearn-audit {command} --format markdown > docs/{command}.md`")


def _section(page: str, name: str) -> str:
    assert f"\n## {name}\n" in page, f"no section for {name!r}"
    return page.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]


def test_methods_page_has_every_method_and_parameter():
    from unlearn_audit.methods import REGISTRY
    from unlearn_audit.report.registry_docs import methods_markdown

    page = methods_markdown([cls.describe() for cls in REGISTRY.values()])
    for name, cls in REGISTRY.items():
        section = _section(page, name)
        assert f"- data access: {cls.data_access.value}" in section
        assert f"- spec: {cls.spec_status}" in section
        assert f"- scenarios: {', '.join(sorted(cls.scenarios))}" in section
        for key in cls.params:
            assert f"| `{key}` |" in section, f"{name}: parameter {key} missing"


def test_attacks_page_has_every_attack_and_parameter():
    from unlearn_audit.attacks import REGISTRY
    from unlearn_audit.report.registry_docs import attacks_markdown

    page = attacks_markdown([cls.describe() for cls in REGISTRY.values()])
    for name, cls in REGISTRY.items():
        section = _section(page, name)
        assert f"- fewest reference models: {cls.min_references}" in section
        for key in cls.defaults():
            assert f"| `{key}` |" in section, f"{name}: parameter {key} missing"


def test_page_rows_render_the_declarations():
    from unlearn_audit.report.registry_docs import methods_markdown

    def param(name, default, kind, allowed, help):
        return {"name": name, "default": default, "type": kind, "allowed": allowed, "help": help}

    declared = {"name": "declared", "title": "A | B", "data_access": "forget-only", "scenarios": ["random"],
                "spec": "reconstructed", "citation": "Someone, 2024",
                "params": [param("lr", 0.1, "float", "a number > 0.0", "learning rate"),
                           param("optimizer", "sgd", "str", "one of sgd, adam", "optimiser"),
                           param("epochs", None, "int", "an integer >= 1 or none", "epochs | passes"),
                           param("use_retain", True, "bool", "true or false", "read the\n  retain set")]}
    bare = {**declared, "name": "bare", "params": []}
    listed = {**declared, "name": "expand:METHOD", "defaults": {"threshold": None}}
    del listed["params"]

    page = methods_markdown([declared, bare, listed])
    assert page.startswith("# Methods\n") and "3 unlearning methods are registered" in page
    assert "| [`declared`](#declared) | A \\| B | forget-only | random | reconstructed |" in page
    section = _section(page, "declared")
    assert "- spec: reconstructed\n- citation: Someone, 2024\n" in section
    assert "| `lr` | 0.1 | float | a number > 0.0 | learning rate |" in section
    assert "| `optimizer` | `sgd` | str | one of sgd, adam | optimiser |" in section
    assert "| `epochs` | none | int | an integer >= 1 or none | epochs \\| passes |" in section
    assert "| `use_retain` | true | bool | true or false | read the retain set |" in section
    assert "No parameters." in _section(page, "bare")
    assert "[`expand:METHOD`](#expandmethod)" in page  # GitHub drops the colon from the anchor
    assert "| `threshold` | none | — | — | — |" in _section(page, "expand:METHOD")

def test_listing_formats():
    runner = CliRunner()
    as_json = runner.invoke(main, ["methods", "--json"])
    assert as_json.exit_code == 0 and as_json.stdout == runner.invoke(main, ["methods", "--format", "json"]).stdout
    both = runner.invoke(main, ["attacks", "--json", "--format", "markdown"])
    assert both.exit_code == 2 and "--json means --format json" in both.output


# ---------------------------------------------------------------- README
def _readme() -> str:
    return README.read_text(encoding="utf-8")


def test_readme_is_short():
    size = len(README.read_bytes())
    assert size < README_LIMIT, (f"README.md is {size} bytes (limit {README_LIMIT}): move detail to a page "
                                 f"under docs/ and link it")


def test_readme_opens_with_the_two_commands():
    text = _readme()
    title, rest = text.split("\n", 1)
    assert title.startswith("# ")
    first = FENCE.search(rest)
    assert first and not rest[:first.start()].strip(), "the README must open with the make demo / make test block"
    commands = [line.split("#", 1)[0].strip() for line in first.group(1).splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    demo = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert demo and "unlearn-audit bench" in demo.group(1)
    test = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert test and "pytest" in test.group(1)


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and " ± " in line]


def test_readme_demo_excerpt_is_copied_from_the_recorded_table():
    excerpt = _table_rows(_readme())
    recorded = set(_table_rows((DOCS / "results" / "demo.md").read_text(encoding="utf-8")))
    assert len(excerpt) == 10
    assert [row for row in excerpt if row not in recorded] == []


SHELL_OPERATORS = {">", ">>", "2>", "|", "||", "&&", ";", "<"}


def _command(line: str) -> list[str] | None:
    """The arguments of an ``unlearn-audit`` (or ``.venv/bin/unlearn-audit``) command line, up to a
    comment or a shell operator; None for any other line."""
    first = line.split(maxsplit=1)[:1]
    if not first or Path(first[0]).name != "unlearn-audit":  # output, tables and prose may hold lone quotes
        return None
    words = shlex.split(line, comments=True)
    if not words or Path(words[0]).name != "unlearn-audit":
        return None
    ends = [i for i, word in enumerate(words) if word in SHELL_OPERATORS]
    return words[1:ends[0] if ends else None]


def shown_commands(text: str, *, inline: bool = True) -> list[list[str]]:
    """Every ``unlearn-audit …`` command a page shows: lines of its code blocks (continuation lines
    joined) and, with ``inline``, code spans in its prose."""
    lines = [line for block in FENCE.findall(text) for line in block.replace("\\\n", " ").splitlines()]
    if inline:
        lines += re.findall(r"`((?:\S*/)?unlearn-audit [^`]+)`", FENCE.sub("", text))
    return [words for words in map(_command, lines) if words is not None]


def parse_command(argv: list[str]) -> click.Context:
    """Resolve ``unlearn-audit ARGV`` to its subcommand and parse the options as the CLI would —
    names, value types, choices, required options — without running anything."""
    command, path, args = main, ["unlearn-audit"], list(argv)
    while isinstance(command, click.Group):
        if not args:
            raise click.UsageError(f"`{' '.join(path)}` needs a subcommand")
        name = args.pop(0)
        sub = command.get_command(click.Context(command), name)
        if sub is None:
            raise click.UsageError(f"`{' '.join(path)}` has no subcommand {name!r}")
        command, path = sub, [*path, name]
    return command.make_context(" ".join(path), args)


def _assert_parse(commands: list[list[str]], where: str) -> None:
    for argv in commands:
        try:
            parse_command(argv)
        except click.ClickException as err:
            pytest.fail(f"{where}: `unlearn-audit {shlex.join(argv)}` does not parse: {err.format_message()}")


def test_readme_commands_parse():
    commands = shown_commands(_readme())
    assert len(commands) >= 5, commands
    _assert_parse(commands, "README.md")


def test_docs_code_block_commands_parse():
    """Code blocks under docs/ show runnable commands (prose there may show placeholders)."""
    for page in sorted(DOCS.rglob("*.md")):
        _assert_parse(shown_commands(page.read_text(encoding="utf-8"), inline=False), str(page.relative_to(ROOT)))


@pytest.mark.parametrize("argv, error", [
    (["verify", "--modle", "unlearned.pt"], click.NoSuchOption),
    (["verify"], click.MissingParameter),
    (["bench", "--oracle", "strongest"], click.BadParameter),
    (["refs", "build", "--count", "many"], click.BadParameter),
    (["verfy", "--model", "unlearned.pt"], click.UsageError),
    (["refs"], click.UsageError),
])
def test_parse_command_catches_what_a_rename_breaks(argv, error):
    with pytest.raises(error):
        parse_command(argv)


def test_command_extraction():
    text = ("intro `unlearn-audit methods --format json` and `make demo`\n\n```bash\n"
            "unlearn-audit verify --model m.pt \\\n    --json v.json   # the gate\necho $?\n"
            ".venv/bin/unlearn-audit attacks --format markdown > docs/attacks.md\n```\n")
    assert shown_commands(text) == [["verify", "--model", "m.pt", "--json", "v.json"],
                                    ["attacks", "--format", "markdown"], ["methods", "--format", "json"]]
    assert shown_commands(text, inline=False) == shown_commands(text)[:2]


# ---------------------------------------------------------------- links
def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(c for c in heading.strip().lower()
                   if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_anchor(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(target)
    assert broken == [], f"{page.relative_to(ROOT)}: links to nothing: {broken}"


def test_anchor_rule():
    assert _anchor("Your own pipeline: data, split, training code, reference models") == \
        "your-own-pipeline-data-split-training-code-reference-models"
    assert _anchor("refs build / refs list") == "refs-build--refs-list"
    assert _anchor("scrub_r") == "scrub_r"
