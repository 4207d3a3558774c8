#!/bin/sh
# Run every CMocka binary in $1/tests (built from tests/unit/ and
# tests/component/; the Makefile names each binary after its source) and
# print one closing line "N passed, N failed" counting the test binaries
# (each prints its own cases).
# VALGRIND=1 runs each one under valgrind's memcheck.
b=${1:-build}
pass=0 fail=0 failed=
for t in "$b"/tests/test_*; do
    [ -x "$t" ] || continue
    echo "=== $t"
    if [ -n "$VALGRIND" ]; then
        set -- valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$t"
    else
        set -- "$t"
    fi
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed ${t##*/}"; fi
done
[ -z "$failed" ] || echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
