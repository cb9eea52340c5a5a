"""Artefacts of ``unlearn-audit verify``: JUnit XML for CI systems and a Markdown report for people."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from unlearn_audit._io import atomic_write_text


def write_junit(info: dict, path: str | Path) -> Path:
    """Two test cases — forgetting and utility — FAIL → <failure>, INCONCLUSIVE → <skipped>."""
    v = info["verdict"]
    forget_failed = v["verdict"] == "FAIL" and v["p_value"] < v["alpha"]
    suite = ET.Element("testsuite", name="unlearn-audit verify", tests="2",
                       failures=str(int(forget_failed) + int(not v["utility"]["ok"])),
                       skipped=str(int(v["verdict"] == "INCONCLUSIVE")))
    # the JUnit schema puts <properties> before the test cases; strict consumers reject other orders
    props = ET.SubElement(suite, "properties")
    for key in ("verdict", "p_value", "power", "completeness"):
        ET.SubElement(props, "property", name=key, value=str(v[key]))
    forget = ET.SubElement(suite, "testcase", classname="unlearn_audit.verify",
                           name=f"forget set ({v['n_forget']} examples) behaves like retraining")
    summary = "; ".join(v["reasons"])
    if forget_failed:
        ET.SubElement(forget, "failure", message=v["reasons"][0]).text = summary
    elif v["verdict"] == "INCONCLUSIVE":
        ET.SubElement(forget, "skipped", message=v["reasons"][0])
    utility = ET.SubElement(suite, "testcase", classname="unlearn_audit.verify", name="test accuracy within tolerance")
    if not v["utility"]["ok"]:
        ET.SubElement(utility, "failure", message=f"test accuracy drop {v['utility']['drop']:.2f} points "
                                                  f"> tolerance {v['utility']['tolerance']}")
    root = ET.Element("testsuites")
    root.append(suite)
    xml = ET.tostring(root, encoding="unicode")
    return atomic_write_text(path, '<?xml version="1.0" encoding="UTF-8"?>\n' + xml + "\n")


def _fmt(x, spec=".3g"):
    return "—" if x is None else format(x, spec)


def markdown_report(info: dict) -> str:
    v, sc = info["verdict"], info["scenario"]
    u = v["utility"]
    ci = v["completeness_ci"]
    lines = [
        f"# unlearn-audit verify: **{v['verdict']}**",
        "",
        f"Target `{info['model']}` — dataset `{sc['dataset']}`, forget `{sc['split']['forget_spec']}` "
        f"({v['n_forget']} examples), split {sc['split']['fingerprint']}.",
        "",
        "## Why",
        *[f"- {r}" for r in v["reasons"]],
        *(["", "## What would help", *[f"- {a}" for a in v["advice"]]] if v["advice"] else []),
        "",
        "## Numbers",
        "| quantity | value |",
        "|---|---|",
        f"| p-value (two-sided, H0: behaves like retraining) | {_fmt(v['p_value'])} (α = {v['alpha']}) |",
        f"| power against the originals | {v['power']:.0%} ({v['n_originals']} originals, {v['n_retrained']} retrained references) |",
        f"| statistic S (mean per-example log-LR, IN vs OUT) | target {_fmt(v['statistic'])}; retrained {_fmt(v['null_mean'])} ± {_fmt(v['null_sd'])}; originals {_fmt(v['original_mean'])} |",
        f"| forgetting completeness (1 = like retraining, 0 = like the original; above 1: further from the "
        f"original than retraining, i.e. over-forgetting) | {_fmt(v['completeness'])}"
        + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "") + " |",
        f"| smallest detectable departure from retraining | {_fmt(v['min_detectable_completeness'])} of the original–retrained gap |",
        f"| test accuracy | {u['test_accuracy']:.2f}% vs retrained {u['retrained_test_accuracy']:.2f}% ± {u['retrained_test_accuracy_sd']:.2f} (tolerance {u['tolerance']} points) |",
        f"| forget examples that still leak (BH) | {len(v['leaking'])} |",
    ]
    ic = info.get("interclass_confusion")
    if ic:
        lines.insert(len(lines), f"| interclass confusion {ic['classes'][0]} ↔ {ic['classes'][1]} (test images "
                                 f"predicted as the other class) | target {ic['target']:.1f}%; retrained "
                                 f"{ic['retrained']:.1f}% ± {ic['retrained_sd']:.1f}; originals {ic['originals']:.1f}% |")
    if info.get("leaking_indices"):
        shown = ", ".join(map(str, info["leaking_indices"][:50]))
        lines += ["", f"Leaking examples (dataset indices): {shown}" + (" …" if len(info["leaking_indices"]) > 50 else "")]
    lines += ["", f"Queries: {', '.join(info['queries'])}. Reference seeds: originals {info['original_seeds']}, "
                  f"retrained {info['reference_seeds']}."]
    return "\n".join(lines) + "\n"


def write_markdown(info: dict, path: str | Path) -> Path:
    return atomic_write_text(path, markdown_report(info))
