#!/usr/bin/env bash
# Builds the three test configurations and runs ctest in each, then prints one summary line.
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
passed=0 failed=0 failed_names=()

run_suite() { # dir, cmake flags, ctest label regex
    local dir=$1 flags=$2 labels=$3
    echo "== $dir ($labels)"
    if ! cmake -S . -B "$dir" $flags >"$dir.configure.log" 2>&1 ||
       ! cmake --build "$dir" -j "$JOBS" >"$dir.build.log" 2>&1; then
        cat "$dir.configure.log" "$dir.build.log" 2>/dev/null | grep -E "error|Error" | head -40
        failed=$((failed + 1)); failed_names+=("build:$dir")
        return
    fi
    ctest --test-dir "$dir" -L "$labels" --output-on-failure -j "$JOBS" 2>&1 | tee "$dir.ctest.log" | grep -vE "^ *Start "
    local p f
    p=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed" "$dir.ctest.log")
    f=$(grep -cE "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*|Failed|Timeout|Not Run)" "$dir.ctest.log")
    passed=$((passed + p)); failed=$((failed + f))
    while read -r n; do [ -n "$n" ] && failed_names+=("$dir:$n"); done < <(
        grep -E "^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*|Failed|Timeout|Not Run)" "$dir.ctest.log" |
        sed -E 's/.*Test +#[0-9]+: ([^ ]+).*/\1/')
}

mkdir -p build build-asan build-fuzz
run_suite build "-DCMAKE_BUILD_TYPE=Release" "unit|parity"
run_suite build-asan "-DCMAKE_BUILD_TYPE=Debug -DCV_SANITIZE=ON" "unit|badinput"
run_suite build-fuzz "-DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCV_FUZZ=ON" "fuzz"

[ ${#failed_names[@]} -gt 0 ] && printf 'failed: %s\n' "${failed_names[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
