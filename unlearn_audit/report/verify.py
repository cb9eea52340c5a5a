"""Artefacts of ``unlearn-audit verify``: console lines, JUnit XML for CI systems and a Markdown
report for people. All read the JSON-ready dict :func:`unlearn_audit.verification.verify_model` returns."""

from __future__ import annotations

import socket
from datetime import datetime, timezone
from pathlib import Path
from xml.etree import ElementTree as ET

from unlearn_audit._io import atomic_write_text

_PART_TITLES = {"forget": "forget set", "forgotten_unseen": "unseen, forgotten class", "retain": "retain set",
                "unseen": "unseen data"}
_DIRECTIONS = {"under": "under-forgetting", "over": "over-forgetting", "higher": "more confident",
               "lower": "less confident", "scatter": "scattered"}


def _fmt(x, spec=".3g"):
    return "—" if x is None else format(x, spec)


def _completeness_text(v: dict) -> str:
    if v["completeness"] is None:
        return "not reported (power below the target)" if v["verdict"] == "INCONCLUSIVE" else "—"
    ci = v["completeness_ci"]
    text = f"{v['completeness']:.2f}".replace("-0.00", "0.00")
    return text + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "") + " (1 = retrained, 0 = original)"


def critical_text(part: dict, spec: str = ".3f") -> str:
    """Where a part passes: ``≤ hi`` for a control, ``lo … hi`` for a forget part (both sides fail)."""
    hi = format(part["critical"], spec)
    return f"≤ {hi}" if part.get("critical_low") is None else f"{format(part['critical_low'], spec)} … {hi}"


def _departure_text(v: dict) -> str:
    d = v["min_detectable_departure"]
    return "none (not even an original model is failed more often than not)" if d is None else \
        f"{d:.2f} of the way to the original"


def _references_text(info: dict) -> str:
    refs, v = info["references"], info["verdict"]
    text = (f"{refs['retrained']} retrained references ({v['n_fit']} fit + {v['n_calibration']} calibration) and "
            f"{refs['originals']} originals")
    if refs.get("source") == "imported":
        text += ", imported (refs import)"
    if refs["auto"]:
        earlier = [f"{t['references']}: {t['power']:.0%}" for t in refs["tried"][:-1]]
        text += ", chosen automatically" + (f" (power at {', '.join(earlier)})" if earlier else "")
        text += {"powered": "", "hopeless": "; more would not help",
                 "cap": "; the cap (--max-references) was reached"}[refs["tried"][-1]["stop"]]
    return text


def verdict_lines(info: dict) -> list[str]:
    """What ``verify`` prints: the verdict and its reasons, one line per part, power, completeness,
    utility, the guarantee and any advice."""
    v = info["verdict"]
    lines = [f"{v['verdict']}: " + "; ".join(v["reasons"])]
    for name, part in v["parts"].items():
        state = f"FAIL ({_DIRECTIONS[part['direction']]})" if part["failed"] else "ok"
        lines.append(f"  {_PART_TITLES.get(name, name):<24} statistic {part['statistic']:7.3f}  passes "
                     f"{critical_text(part):<16} retrained {part['null_mean']:.3f} ± {part['null_sd']:.3f}  "
                     f"originals {part['originals_mean']:.3f}  {state}")
    lines.append(f"power {v['power']:.0%} (95 % lower bound {v['power_lower']:.0%}); references: "
                 f"{_references_text(info)}")
    lines.append(f"completeness {_completeness_text(v)}; smallest detectable departure from retraining: "
                 f"{_departure_text(v)}; test accuracy {v['utility']['test_accuracy']:.1f}% (retrained "
                 f"{v['utility']['retrained_test_accuracy']:.1f}%)")
    ic = info.get("interclass_confusion")
    if ic:
        a, b = ic["classes"]
        lines.append(f"interclass confusion {a} <-> {b} on test images: target {ic['target']:.1f}%, retrained "
                     f"{ic['retrained']:.1f}% ± {ic['retrained_sd']:.1f}, originals {ic['originals']:.1f}%")
    lines.append(f"guarantee: {v['guarantee']}")
    lines += [f"  - {line}" for line in v["advice"]]
    return lines


def junit_timestamp(info: dict) -> str:
    """When the run happened, as the JUnit schema wants it: ISO 8601 in UTC, to the second, without
    a zone designator (the Ant / Jenkins XSD refuses one, and fractions of a second)."""
    stamp = info.get("timestamp")
    # fromisoformat reads a trailing "Z" only from Python 3.11 on
    when = datetime.now(timezone.utc) if stamp is None else datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if when.tzinfo is not None:  # a naive timestamp is taken as UTC already
        when = when.astimezone(timezone.utc)
    return when.replace(tzinfo=None).isoformat(timespec="seconds")


def write_junit(info: dict, path: str | Path) -> Path:
    """One test case per part plus utility: a failed part → <failure>, INCONCLUSIVE → <skipped>.

    The file is valid against the Ant / Jenkins JUnit XSD (tests/data/junit.xsd), which strict
    consumers enforce: every required attribute (``time``, ``timestamp``, ``hostname``, ``errors``,
    ``package``, ``id``, a ``type`` on each failure) and the ``system-out`` / ``system-err`` elements.
    """
    v = info["verdict"]
    cases = [(f"{_PART_TITLES.get(name, name)} ({part['n_examples']} examples) behaves like retraining",
              part["failed"], _DIRECTIONS[part["direction"]],
              f"{_DIRECTIONS[part['direction']]}: statistic {part['statistic']:.3g} outside "
              f"{critical_text(part, '.3g')}") for name, part in v["parts"].items()]
    cases.append(("test accuracy within tolerance", not v["utility"]["ok"], "utility loss",
                  f"test accuracy drop {v['utility']['drop']:.2f} points > tolerance {v['utility']['tolerance']}"))
    inconclusive = v["verdict"] == "INCONCLUSIVE"
    seconds = info.get("seconds")
    suite = ET.Element("testsuite", name="unlearn-audit verify", package="unlearn_audit", id="0",
                       timestamp=junit_timestamp(info), hostname=socket.gethostname() or "localhost",
                       tests=str(len(cases)), failures=str(sum(failed for _, failed, _, _ in cases)), errors="0",
                       skipped=str(int(inconclusive)), time=f"{seconds or 0.0:.3f}")
    # the JUnit schema puts <properties> before the test cases; strict consumers reject other orders
    props = ET.SubElement(suite, "properties")
    for key in ("verdict", "p_value", "power", "power_lower", "completeness", "guarantee"):
        ET.SubElement(props, "property", name=key, value=str(v[key]))
    summary = "; ".join(v["reasons"])
    for k, (name, failed, kind, message) in enumerate(cases):
        # the parts are judged together from one scoring of the target: the run's time is the suite's
        case = ET.SubElement(suite, "testcase", classname="unlearn_audit.verify", name=name, time="0")
        if failed:
            ET.SubElement(case, "failure", message=message, type=kind).text = summary
        elif inconclusive and k == 0:
            ET.SubElement(case, "skipped", message=v["reasons"][0])
    ET.SubElement(suite, "system-out").text = "\n".join([f"{v['verdict']}: {summary}", f"guarantee: {v['guarantee']}",
                                                          *v["advice"]])
    ET.SubElement(suite, "system-err")
    root = ET.Element("testsuites")
    root.append(suite)
    xml = ET.tostring(root, encoding="unicode")
    return atomic_write_text(path, '<?xml version="1.0" encoding="UTF-8"?>\n' + xml + "\n")


def markdown_report(info: dict) -> str:
    v, sc = info["verdict"], info["scenario"]
    u = v["utility"]
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
        "## Parts",
        "The target is compared with retrained references on each part. On a control part the statistic is the "
        "log mean square of its deviations from the references' mean (it fails above the critical value); on a "
        "forget part the mean residual from the target's own calibration map fitted on unseen data (it fails "
        "outside the critical values: above is under-forgetting, below over-forgetting).",
        "",
        "| part | examples | statistic | passes | retrained (mean ± sd) | originals | smallest failing α | result |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {_PART_TITLES.get(n, n)} | {p['n_examples']} | {p['statistic']:.3f} | {critical_text(p)} | "
          f"{p['null_mean']:.3f} ± {p['null_sd']:.3f} | {p['originals_mean']:.3f} | {_fmt(p['p_value'])} | "
          f"{'**FAIL** (' + _DIRECTIONS[p['direction']] + ')' if p['failed'] else 'ok'} |"
          for n, p in v["parts"].items()],
        "",
        "## Numbers",
        "| quantity | value |",
        "|---|---|",
        f"| guarantee | {v['guarantee']} |",
        f"| smallest α at which this bank would FAIL the target | {_fmt(v['p_value'])} (α = {v['alpha']}) |",
        f"| power: share of original models that FAIL on the forget set | {v['power']:.1%} (95 % lower bound "
        f"{v['power_lower']:.1%}; target {v['min_power']:.0%}) |",
        f"| references | {_references_text(info)} |",
        f"| forgetting completeness on the forget set | {_completeness_text(v)} |",
        f"| smallest detectable departure from retraining, on the forget set | {_departure_text(v)} |",
        f"| test accuracy | {u['test_accuracy']:.2f}% vs retrained {u['retrained_test_accuracy']:.2f}% ± "
        f"{u['retrained_test_accuracy_sd']:.2f} (tolerance {u['tolerance']} points) |",
        f"| forget examples that still look remembered | {len(v['leaking'])} (of {v['separated']} on which the "
        f"references separate originals from retrained models) |",
    ]
    ic = info.get("interclass_confusion")
    if ic:
        lines.append(f"| interclass confusion {ic['classes'][0]} ↔ {ic['classes'][1]} (test images predicted as the "
                     f"other class) | target {ic['target']:.1f}%; retrained {ic['retrained']:.1f}% ± "
                     f"{ic['retrained_sd']:.1f}; originals {ic['originals']:.1f}% |")
    if info.get("leaking_indices"):
        shown = ", ".join(map(str, info["leaking_indices"][:50]))
        lines += ["", f"Examples that still look remembered (dataset indices): {shown}"
                  + (" …" if len(info["leaking_indices"]) > 50 else "")]
    refs = info["references"]
    lines += ["", f"Queries: {', '.join(info['queries'])}. Reference seeds: fit {refs['fit_seeds']}, calibration "
                  f"{refs['calibration_seeds']}, originals {refs['original_seeds']}."]
    return "\n".join(lines) + "\n"


def write_markdown(info: dict, path: str | Path) -> Path:
    return atomic_write_text(path, markdown_report(info))
