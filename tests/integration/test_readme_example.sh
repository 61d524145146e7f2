#!/usr/bin/env bash
# tests/integration/test_readme_example.sh - README.md stays true: its C
# example (between the readme-example markers) compiles warning-free against
# this build's static library, runs, and leaves an image the tool reads back;
# its command examples (readme-cli markers) run as shown; its relative links
# lead to files that exist.
set -euo pipefail
: "${SRCDIR:?}" "${BUILD_DIR:?}" "${BLOBSTORE:?}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bs-readme.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# The code between the markers, without its ``` fence lines.
sed -n '/<!-- readme-example:begin -->/,/<!-- readme-example:end -->/p' "$SRCDIR/README.md" |
	sed -e '/<!-- readme-example:/d' -e '/^```/d' >"$tmp/example.c"
grep -q 'int main' "$tmp/example.c" || fail "no example between the markers in README.md"

# A sanitizer build's library needs the same runtime at link time.
san=()
lib=$BUILD_DIR/libblobstore.a
nm "$lib" 2>/dev/null | grep '__asan_' >/dev/null && san+=(-fsanitize=address)
nm "$lib" 2>/dev/null | grep '__ubsan_' >/dev/null && san+=(-fsanitize=undefined)

# shellcheck disable=SC2046 # pkg-config output is a word list
cc -std=c11 -Wall -Wextra -Werror -pedantic "${san[@]}" -I"$SRCDIR/include" \
	-o "$tmp/example" "$tmp/example.c" "$lib" $(pkg-config --libs libtasn1 libcrypto) -lpthread ||
	fail "the README example does not compile"

img=$tmp/vm.img
"$tmp/example" "$img" >"$tmp/out1" || fail "first run (creates the image)"
cat "$tmp/out1"
"$tmp/example" "$img" >"$tmp/out2" || fail "second run (reuses the image)"
cmp "$tmp/out1" "$tmp/out2" || fail "the second run printed something else"
grep -q '^vtpm/permall: 21 octets: state after shutdown$' "$tmp/out1" || fail "unexpected output"

"$BLOBSTORE" get "$img" vtpm --name permall -o "$tmp/value" || fail "the tool cannot read the entry"
printf 'state after shutdown\0' | cmp - "$tmp/value" || fail "the tool reads other data"
"$BLOBSTORE" check "$img" || fail "the image does not pass check"

# The command examples run as shown, in order, on permall.bin and vars.bin.
sed -n '/<!-- readme-cli:begin -->/,/<!-- readme-cli:end -->/p' "$SRCDIR/README.md" |
	sed -e '/<!-- readme-cli:/d' -e '/^```/d' >"$tmp/cli.sh"
grep -q '^blobstore format' "$tmp/cli.sh" || fail "no command examples between the markers in README.md"
mkdir "$tmp/cli"
head -c 1229 /dev/zero | tr '\0' 'p' >"$tmp/cli/permall.bin"
head -c 5000 /dev/zero | tr '\0' 'v' >"$tmp/cli/vars.bin"
mkdir "$tmp/bin"
printf '#!/bin/sh\nexec "%s" --no-sync "$@"\n' "$BLOBSTORE" >"$tmp/bin/blobstore"
chmod +x "$tmp/bin/blobstore"
(cd "$tmp/cli" && PATH=$tmp/bin:$PATH bash -ex "$tmp/cli.sh") || fail "a command example in README.md failed"
cmp "$tmp/cli/permall.bin" "$tmp/cli/permall.out" || fail "the README's get gave other data"

# Every relative link in README.md leads to a file of this tree.
grep -o '](\([^)#]*\))' "$SRCDIR/README.md" | sed 's/^](\(.*\))$/\1/' | grep -v '://' | sort -u |
	while read -r target; do
		[ -e "$SRCDIR/$target" ] || fail "README.md links to $target, which does not exist"
	done
echo "readme example: ok"
