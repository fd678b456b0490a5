#!/usr/bin/env bash
# The action's audit step: builds the command line from the inputs (IN_*), runs it, appends the
# Markdown report to the job summary, writes the counts to the step's outputs, and records the
# exit status for the gate step (which runs after the SARIF upload).
set -uo pipefail
args=(audit --format github)
[ -n "${IN_INPUT:-}" ] && args+=(--input "$IN_INPUT")
[ "${IN_FETCH:-false}" = "true" ] && args+=(--fetch)
[ -n "${IN_CONFIG:-}" ] && args+=(--config "$IN_CONFIG")
while IFS= read -r r; do [ -n "$r" ] && args+=(--rules "$r"); done <<< "${IN_RULES:-}"
[ -n "${IN_WAIVERS:-}" ] && args+=(--waivers "$IN_WAIVERS")
[ -n "${IN_FAIL_ON:-}" ] && args+=(--fail-on "$IN_FAIL_ON")
while IFS= read -r f; do [ -n "$f" ] && args+=(--report "$f"); done <<< "${IN_FORMATS:-}"
if [ "${IN_SUMMARY:-true}" = "true" ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  args+=(--report "markdown=$GITHUB_STEP_SUMMARY")   # appended, never replaced
fi
[ -n "${IN_SARIF:-}" ] && args+=(--report "sarif=$IN_SARIF")
json="${RUNNER_TEMP:-/tmp}/orgaudit-findings.json"
args+=(--report "json=$json")
while IFS= read -r a; do [ -n "$a" ] && args+=("$a"); done <<< "${IN_ARGS:-}"

orgaudit "${args[@]}"
code=$?
out="${GITHUB_OUTPUT:-/dev/null}"
echo "exit-code=$code" >> "$out"
if [ -s "$json" ]; then
  python3 - "$json" >> "$out" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
u = s["unwaived_by_severity"]
print(f"findings={s['findings']}")
print(f"unwaived={sum(u.values())}")
print(f"critical={u['critical']}")
print(f"high={u['high']}")
PY
fi
exit 0
