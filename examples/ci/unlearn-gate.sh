#!/usr/bin/env bash
# The unlearning release gate for CI: certify a model with `unlearn-audit verify` and turn the
# verdict into the job's result. github-actions.yml and gitlab-ci.yml both call this script; it runs
# the same way on a laptop:  MODEL=unlearned.pt bash examples/ci/unlearn-gate.sh
#
# Variables:
#   MODEL               the checkpoint to certify (required)
#   CONFIG              the scenario TOML file (optional; empty: the embedded digits scenario)
#   STORE               the reference-model store; cache it between runs, or every run trains the
#                       references again (default: .unlearn-audit-store)
#   OUT                 the artefact folder (default: unlearn-audit-out): verdict.json, verdict.xml
#                       (JUnit), report/index.html (+ figures), summary.md
#   ALLOW_INCONCLUSIVE  true: an INCONCLUSIVE verdict (the audit could not tell originals from
#                       retrained models reliably) passes the job; false (default): it fails it
#   GITHUB_STEP_SUMMARY set by GitHub Actions: summary.md is appended to the job summary
#
# Exit status: 0 PASS (or INCONCLUSIVE, when allowed); 1 FAIL; 3 INCONCLUSIVE; anything else means
# the gate did not run (verify's own code: 2 bad input or usage, 4 the machine — disk full,
# unwritable store —, 5 internal error; 127 unlearn-audit not installed) and is passed on unchanged,
# so a broken gate never looks like a verdict.
set -euo pipefail

say() {  # one line on stderr; on GitHub also an annotation on the run's page
  if [[ "${GITHUB_ACTIONS:-}" == "true" ]]; then echo "::$1::$2" >&2; else echo "unlearn-gate: $2" >&2; fi
}

summary() {  # append to the GitHub job summary, when there is one; never fails the gate
  if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    cat >> "$GITHUB_STEP_SUMMARY" || say warning "cannot write the job summary ($GITHUB_STEP_SUMMARY)"
  else
    cat > /dev/null
  fi
}

if [[ -z "${MODEL:-}" ]]; then
  say error "set MODEL to the checkpoint to certify"
  exit 2
fi
STORE="${STORE:-.unlearn-audit-store}"
OUT="${OUT:-unlearn-audit-out}"
case "${ALLOW_INCONCLUSIVE:-false}" in
  true | 1 | yes) allow_inconclusive=true ;;
  false | 0 | no | "") allow_inconclusive=false ;;
  *) say error "ALLOW_INCONCLUSIVE must be true or false, got '${ALLOW_INCONCLUSIVE}'"; exit 2 ;;
esac

# A previous run's artefacts must not pass for this run's if verify does not get to write them.
# Failing here is the machine's problem, not a verdict: exit 4, as verify would.
if ! { mkdir -p "$OUT" && rm -rf "$OUT/verdict.json" "$OUT/verdict.xml" "$OUT/report" "$OUT/summary.md"; }; then
  say error "cannot prepare OUT=$OUT (see above): the gate did not run"
  exit 4
fi
args=(verify --model "$MODEL" --store "$STORE" --json "$OUT/verdict.json" --junit "$OUT/verdict.xml"
      --report "$OUT/report" --summary-md "$OUT/summary.md" --quiet)
if [[ -n "${CONFIG:-}" ]]; then
  args+=(--config "$CONFIG")
fi

code=0
unlearn-audit "${args[@]}" || code=$?

if [[ -f "$OUT/summary.md" ]]; then
  summary < "$OUT/summary.md"
fi
case $code in
  0)
    echo "unlearn-gate: PASS — $MODEL behaves like a model retrained without the forget set" ;;
  1)
    say error "FAIL — $MODEL does not behave like a model retrained without the forget set; see $OUT/summary.md and $OUT/report/index.html" ;;
  3)
    if [[ $allow_inconclusive == true ]]; then
      say warning "INCONCLUSIVE — the audit could not fail original models reliably; passing because ALLOW_INCONCLUSIVE=true (see the advice in $OUT/summary.md)"
      code=0
    else
      say error "INCONCLUSIVE — the audit could not fail original models reliably, so it cannot certify $MODEL; see the advice in $OUT/summary.md, or set ALLOW_INCONCLUSIVE=true to let this pass"
    fi ;;
  *)
    say error "the gate did not run (unlearn-audit verify exited $code: 2 bad input, 4 disk full or unwritable store / output, 5 internal error; its message is above) — this is not a verdict on $MODEL"
    printf '# unlearn-audit verify did not run\n\nExit code %s; see the job log.\n' "$code" | summary ;;
esac
exit "$code"
