#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ (or the ones named) for a bounded time each, one after
# the other, and fails when one of them finds a crash, naming the input that makes it crash.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). See docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target: the first argument, else FUZZ_SECONDS, else 60. FUZZ_SANITIZER chooses
# cargo-fuzz's sanitizer (address by default; `none` builds and runs faster).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-${FUZZ_SECONDS:-60}}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: seconds per target must be a whole number above 0, not \`$seconds\`" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: needs the nightly toolchain and cargo-fuzz:" >&2
    echo "  rustup toolchain install nightly && cargo install cargo-fuzz" >&2
    exit 2
fi

cd "$root/fuzz"
sanitizer=(--sanitizer "${FUZZ_SANITIZER:-address}")
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "building ${#targets[@]} fuzz targets (${sanitizer[*]})"
cargo +nightly fuzz build "${sanitizer[@]}"

failed=()
for target in "${targets[@]}"; do
    corpus="corpus/$target"
    artifacts="artifacts/$target"
    log="$artifacts/fuzz.log"
    mkdir -p "$corpus" "$artifacts"
    before="$(find "$artifacts" -type f ! -name fuzz.log | sort)"
    echo "fuzzing $target for ${seconds}s (log: fuzz/$log)"
    # New inputs go to the first corpus folder (not committed); the seeds are read only.
    if cargo +nightly fuzz run "${sanitizer[@]}" "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
        echo "  $target: no crash in ${runs:-?} executions"
    else
        failed+=("$target")
        echo "  $target: CRASH (see fuzz/$log)" >&2
        grep -m 5 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|SUMMARY" "$log" \
            | sed 's/^/    /' >&2 || true
        found="$(comm -13 <(echo "$before") <(find "$artifacts" -type f ! -name fuzz.log | sort))"
        if [[ -n "$found" ]]; then
            while IFS= read -r input; do
                echo "  crash input: fuzz/$input" >&2
                echo "  reproduce:   (cd fuzz && cargo +nightly fuzz run $target $input)" >&2
            done <<<"$found"
        fi
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: no crash in ${#targets[@]} targets"
