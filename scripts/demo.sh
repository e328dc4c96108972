#!/usr/bin/env bash
# The main job. Grows with the project: see README.md.
set -euo pipefail
CV=${1:-build/cvision}
"$CV" --help
