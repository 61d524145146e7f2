#!/usr/bin/env bash
# tests/integration/test_layers.sh - the layer rule of docs/ARCHITECTURE.md
# holds for this build (tools/check-layers.py over its objects and the
# sources' includes), and the check itself catches a call that goes up, one
# that goes sideways, a cycle, an internal symbol used by the device layer,
# and a forbidden include.
set -euo pipefail
: "${SRCDIR:?}" "${BUILD_DIR:?}"
fail() { echo "FAIL: $*"; exit 1; }

python3 "$SRCDIR/tools/check-layers.py" "$BUILD_DIR" || fail "the layer rule is broken"

# A copy of the tree's sources and objects with one breach each time.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bs-layers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mk() { # NAME: a fresh copy in $tmp/NAME
	rm -rf "${tmp:?}/$1"
	mkdir -p "$tmp/$1"
	cp -a "$SRCDIR/blobstore" "$SRCDIR/nvram" "$SRCDIR/tools" "$SRCDIR/examples" "$SRCDIR/include" \
		"$tmp/$1/"
	mkdir -p "$tmp/$1/build"
	cp -a "$BUILD_DIR/obj" "$tmp/$1/build/"
}
inject() { # NAME REL-SOURCE CODE: adds a source and its object
	local d=$tmp/$1 rel=$2
	printf '%s\n' "$3" >"$d/$rel"
	mkdir -p "$d/build/obj/$(dirname "$rel")"
	cc -std=c11 -c -I"$d/include" -I"$d/blobstore" -o "$d/build/obj/${rel%.c}.o" "$d/$rel"
}
expect() { # NAME WHAT: the check fails naming WHAT
	if python3 "$SRCDIR/tools/check-layers.py" "$tmp/$1/build" "$tmp/$1" >"$tmp/out" 2>&1; then
		fail "$1: the check passed"
	fi
	grep -F -- "$2" "$tmp/out" >/dev/null || { cat "$tmp/out"; fail "$1: no '$2' in the report"; }
	echo "caught: $1"
}

mk up
inject up blobstore/base/probe_up.c '#include <blobstore/blobstore.h>
void bs__probe(void); void bs__probe(void) { bs_image_close(0); }'
expect up "a call up"

mk sideways
inject sideways blobstore/der/probe_side.c 'struct bs__io; int bs__io_sync(struct bs__io *io);
int bs__probe(void); int bs__probe(void) { return bs__io_sync(0); }'
expect sideways "a call sideways"

mk cycle
inject cycle blobstore/base/probe_a.c 'void bs__probe_b(void); void bs__probe_a(void); void bs__probe_a(void) { bs__probe_b(); }'
inject cycle blobstore/base/probe_b.c 'void bs__probe_a(void); void bs__probe_b(void); void bs__probe_b(void) { bs__probe_a(); }'
expect cycle "cycle between files"

mk internal
inject internal nvram/probe_int.c 'int bs__hexval_probe(void); int probe(void); int probe(void) { return bs__hexval_probe(); }'
printf 'int bs__hexval_probe(void);\nint bs__hexval_probe(void) { return 0; }\n' >"$tmp/internal/blobstore/base/probe_def.c"
cc -std=c11 -c -o "$tmp/internal/build/obj/blobstore/base/probe_def.o" "$tmp/internal/blobstore/base/probe_def.c"
expect internal "uses the library's internal bs__hexval_probe"

mk include
printf '#include "dir/dir.h"\n' >>"$tmp/include/blobstore/storage/io.c"
expect include "the storage layer may not use dir"

mk nvinclude
printf '#include "../blobstore/api/api.h"\n' >>"$tmp/nvinclude/nvram/device.c"
expect nvinclude "public headers"
echo "layers: ok"
