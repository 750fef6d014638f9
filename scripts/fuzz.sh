#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ one after the other.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Each target (all of them by default) runs for SECONDS (default 20), starting
# from its checked-in seed corpus fuzz/corpus/TARGET. libFuzzer writes the
# inputs it finds into a temporary copy of that corpus, so a run never changes
# the checked-in files. Exits non-zero if any target crashes (the crashing
# input is left in fuzz/artifacts/TARGET/); prints the executions per target.
#
# Built without a sanitizer (--sanitizer none): socp-core forbids unsafe code,
# so AddressSanitizer would only watch the crypto dependencies, and it runs the
# targets 2.3-2.8x slower (fuzz/README.md, BENCHMARKS.md). Installs cargo-fuzz
# if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(envelope_decode server_frames client_frames handshake ratchet channel upgrade)

seconds="${1:-20}"
if [[ $# -gt 0 ]]; then
    shift
fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
    exit 2
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${ALL_TARGETS[@]}")
fi
for t in "${targets[@]}"; do
    if [[ ! -f "fuzz/fuzz_targets/$t.rs" ]]; then
        echo "fuzz.sh: no target $t (targets: ${ALL_TARGETS[*]})" >&2
        exit 2
    fi
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# cargo-fuzz passes nightly-only flags (-Z...); RUSTC_BOOTSTRAP lets the
# stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
FUZZ_FLAGS=(--sanitizer none --fuzz-dir fuzz)

work="$(mktemp -d "${TMPDIR:-/tmp}/socp-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

started=$SECONDS
echo "== building fuzz targets"
for t in "${targets[@]}"; do
    cargo fuzz build "${FUZZ_FLAGS[@]}" "$t"
done
built=$((SECONDS - started))

failed=()
summary=()
for t in "${targets[@]}"; do
    corpus="$work/$t"
    mkdir -p "$corpus"
    if [[ -d "fuzz/corpus/$t" ]]; then
        cp -R "fuzz/corpus/$t/." "$corpus/"
    fi
    log="$work/$t.log"
    echo "== fuzz $t for ${seconds}s ($(find "$corpus" -type f | wc -l) seeds)"
    set +e
    cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "$corpus" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    execs="$(grep -E '^stat::number_of_executed_units:' "$log" | tail -n 1 | awk '{print $2}')"
    rate="$(grep -E '^stat::average_exec_per_sec:' "$log" | tail -n 1 | awk '{print $2}')"
    if [[ $rc -ne 0 ]]; then
        failed+=("$t")
        echo "!! $t crashed (exit $rc); last lines of its log:"
        tail -n 40 "$log"
        summary+=("$t: CRASH after ${execs:-?} executions")
    else
        summary+=("$t: ${execs:-?} executions (${rate:-?}/s), corpus $(find "$corpus" -type f | wc -l)")
    fi
done

echo "== fuzz summary (${seconds}s per target, build ${built}s, total $((SECONDS - started))s)"
for line in "${summary[@]}"; do
    echo "   $line"
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz.sh: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
