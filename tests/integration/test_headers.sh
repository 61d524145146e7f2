#!/usr/bin/env bash
# tests/integration/test_headers.sh - every public header compiles on its own,
# twice in a row (include guard), as strict C11 with gcc and clang and as
# C++ (the extern "C" wrapping), with warnings as errors.
set -euo pipefail
: "${SRCDIR:?}"

fails=0
n=0
try() { # LABEL COMPILER ARGS... < SOURCE
	local label=$1; shift
	if "$@" -fsyntax-only -I"$SRCDIR/include" - 2>"$TMPDIR/hdr-err.$$"; then
		n=$((n + 1))
	else
		echo "FAIL: $label"
		sed 's/^/    /' "$TMPDIR/hdr-err.$$"
		fails=$((fails + 1))
	fi
	rm -f "$TMPDIR/hdr-err.$$"
}

compilers=(cc)
command -v clang >/dev/null 2>&1 && compilers+=(clang)
for path in "$SRCDIR"/include/blobstore/*.h "$SRCDIR"/include/blobstore/sys/*.h; do
	h=${path#"$SRCDIR/include/"}
	for c in "${compilers[@]}"; do
		try "$c -std=c11 $h" "$c" -std=c11 -Wall -Wextra -Werror -pedantic -x c <<<"#include <$h>"
		try "$c -std=c11 $h twice" "$c" -std=c11 -Wall -Wextra -Werror -pedantic -x c \
			<<<"#include <$h>
#include <$h>"
	done
	try "c++ $h" c++ -std=c++11 -Wall -Wextra -Werror -pedantic -x c++ <<<"#include <$h>"
done
echo "headers: $n compilations passed, $fails failed"
[ "$fails" -eq 0 ] && [ "$n" -gt 0 ]
