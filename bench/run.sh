#!/usr/bin/env bash
# All side-by-side benchmarks (slow; not part of the tests). See docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 bench/engine.py --build build "$@"
/usr/bin/python3 bench/train.py --build build "$@"
/usr/bin/python3 bench/loader.py --cvision build/cvision
