#!/usr/bin/env bash
# Format the whole tree as CI checks it (.ci/run: `ruff format --check`, `ruff check` with E501 at 119 columns):
# ruff format, then split over-long string literals (tools/split_long_strings.py keeps a file only if its syntax
# tree is unchanged), format again, and list the long lines left (docstrings, comments) to wrap by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
PATHS=(gvendi callbacks hub_scripts tests benchmarks docs tools)
ruff format "${PATHS[@]}"
# shellcheck disable=SC2046
python tools/split_long_strings.py $(git ls-files -- "${PATHS[@]/%//*.py}")
ruff format "${PATHS[@]}"
ruff check --fix "${PATHS[@]}" || true
echo "== long lines left to wrap by hand"
ruff check --select E501 --output-format concise "${PATHS[@]}" || true
