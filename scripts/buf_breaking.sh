#!/usr/bin/env bash
# buf breaking against the contracts as they were before this change, so the check can fail.
#
# Baseline, first found: $BUF_BREAKING_AGAINST (any buf input); the previous commit (HEAD~1, the
# first parent: on main that is main before the merge); nothing for a repository's first commit.
# A shallow clone may not hold HEAD~1: the script deepens it by one commit, and if that is not
# possible it fails (in CI) or says loudly that nothing was compared (elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
BUF="${BUF:-.tools/node_modules/.bin/buf}"

if [[ -n "${BUF_BREAKING_AGAINST:-}" ]]; then
  echo "buf breaking: against $BUF_BREAKING_AGAINST"
  exec "$BUF" breaking protos --against "$BUF_BREAKING_AGAINST"
fi

if ! git rev-parse --verify --quiet HEAD~1 >/dev/null; then
  if [[ "$(git rev-parse --is-shallow-repository)" == "true" ]]; then
    git fetch --quiet --deepen=1 2>/dev/null || true
  fi
fi
if ! previous="$(git rev-parse --verify --quiet HEAD~1)"; then
  if [[ "$(git rev-parse --is-shallow-repository)" == "true" ]]; then
    msg="buf breaking: this is a shallow clone without the previous commit (git fetch --deepen=1 failed); cannot compare"
    if [[ "${CI:-}" == "true" ]]; then
      echo "$msg; CI needs a clone with history (or set BUF_BREAKING_AGAINST)" >&2
      exit 1
    fi
    echo "$msg; SKIPPED (set BUF_BREAKING_AGAINST to compare with something else)" >&2
    exit 0
  fi
  echo "buf breaking: HEAD is the first commit, nothing earlier to compare with; skipped"
  exit 0
fi

if git diff --quiet "$previous" HEAD -- protos; then
  echo "buf breaking: protos/ unchanged since ${previous:0:12}"
else
  echo "buf breaking: protos/ against ${previous:0:12} (HEAD~1)"
fi
# the baseline is read from the object store, so a worktree or a dirty tree changes nothing
exec "$BUF" breaking protos --against ".git#ref=${previous},subdir=protos"
