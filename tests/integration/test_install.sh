#!/usr/bin/env bash
# tests/integration/test_install.sh - `make install` into a staging DESTDIR
# lays out a usable copy: the shared library with its soname, the static
# library, every public header, blobstore.pc, the tool, its man page and the
# ASN.1 module; a program builds against the installed copy through
# pkg-config (dynamically and statically) and runs.
#
# Installing builds the release variant, so this runs only for the release
# build directory (build/) and skips elsewhere (the ASan pass).
set -euo pipefail
: "${SRCDIR:?}" "${BUILD_DIR:?}"

case $BUILD_DIR in
*/build) ;;
*)
	echo "skip: install is checked with the release build only (BUILD_DIR=$BUILD_DIR)"
	exit 0
	;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bs-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root
fail() { echo "FAIL: $*"; exit 1; }

version=$(sed -n 's/^VERSION := //p' "$SRCDIR/Makefile")
somajor=$(sed -n 's/^SOMAJOR := //p' "$SRCDIR/Makefile")
[ -n "$version" ] || fail "cannot read VERSION from the Makefile"
[ -n "$somajor" ] || fail "cannot read SOMAJOR from the Makefile"

# A make of our own, not a job of the make that runs the tests.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	make -C "$SRCDIR" --no-print-directory install DESTDIR="$dest" PREFIX=/usr >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "make install"; }

lib=$dest/usr/lib
echo "== installed files"
(cd "$dest" && find . -type f -o -type l | sort)

# Libraries: the real file, the soname link, the development link.
[ -f "$lib/libblobstore.so.$version" ] || fail "no libblobstore.so.$version"
[ "$(readlink "$lib/libblobstore.so.$somajor")" = "libblobstore.so.$version" ] ||
	fail "libblobstore.so.$somajor does not point at libblobstore.so.$version"
[ "$(readlink "$lib/libblobstore.so")" = "libblobstore.so.$somajor" ] ||
	fail "libblobstore.so does not point at the soname"
readelf -d "$lib/libblobstore.so.$version" | grep "Library soname: \[libblobstore.so.$somajor\]" >/dev/null ||
	fail "soname is not libblobstore.so.$somajor"
# The shared library exports the API.  (No "| grep -q" in this file: with
# pipefail the writer's SIGPIPE would fail the pipeline.)
nm -D --defined-only "$lib/libblobstore.so.$version" | sed 's/@.*//' | grep ' T bs_open$' >/dev/null ||
	fail "bs_open is not exported"
# ... and nothing else: internal helpers (bs__*, der_*, the ASN.1 table) stay local.
extra=$(nm -D --defined-only "$lib/libblobstore.so.$version" | awk '$3 != "" {print $3}' | sed 's/@.*//' |
	grep -v -e '^bs_[a-z]' -e '^nvram_[a-z]' -e '^BLOBSTORE_0$' || true)
[ -z "$extra" ] || fail "exports internal symbols: $extra"
[ -f "$lib/libblobstore.a" ] || fail "no static library"
ar t "$lib/libblobstore.a" | grep '\.o$' >/dev/null || fail "static library is empty"

# Headers, all of them, identical to the sources.
for h in "$SRCDIR"/include/*.h; do
	cmp "$h" "$dest/usr/include/$(basename "$h")" || fail "header $(basename "$h")"
done

# Tool, man page, ASN.1 module.
[ -x "$dest/usr/bin/blobstore" ] || fail "no tool"
man=$dest/usr/share/man/man1/blobstore.1
grep -q '^\.TH' "$man" 2>/dev/null || fail "no man page at share/man/man1/blobstore.1"
cmp "$SRCDIR/blobstore/blobstore.asn" "$dest/usr/share/blobstore/blobstore.asn" ||
	fail "ASN.1 module"

# The installed tool runs against the installed library's format.
"$dest/usr/bin/blobstore" format "$tmp/tool.img" || fail "installed tool: format"
"$dest/usr/bin/blobstore" list "$tmp/tool.img" >/dev/null || fail "installed tool: list"

# pkg-config, as a cross build over a sysroot would use it.
export PKG_CONFIG_PATH=$lib/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$dest
[ "$(pkg-config --modversion blobstore)" = "$version" ] || fail "pkg-config --modversion"
cflags=$(pkg-config --cflags blobstore)
libs=$(pkg-config --libs blobstore)
static_libs=$(pkg-config --static --libs blobstore)
echo "== pkg-config: cflags '$cflags' libs '$libs' static '$static_libs'"
case " $cflags " in *" -I$dest/usr/include "*) ;; *) fail "cflags lack -I$dest/usr/include" ;; esac
case " $libs " in *" -L$lib "*) ;; *) fail "libs lack -L$lib" ;; esac
case " $libs " in *" -lblobstore "*) ;; *) fail "libs lack -lblobstore" ;; esac
case " $static_libs " in *" -ltasn1 "*) ;; *) fail "static libs lack libtasn1" ;; esac
case " $static_libs " in *" -lcrypto "*) ;; *) fail "static libs lack libcrypto" ;; esac

# Each installed header compiles on its own through the installed copy.
for h in "$dest"/usr/include/*.h; do
	# shellcheck disable=SC2086
	printf '#include <%s>\n' "$(basename "$h")" |
		cc -std=c11 -Wall -Wextra -Werror -pedantic $cflags -fsyntax-only -x c - ||
		fail "installed header $(basename "$h") does not compile on its own"
done

cat >"$tmp/prog.c" <<'EOF'
/* Stores a value, reopens the image and reads the value back. */
#include <blobstore.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	static const char value[] = "installed";
	char buf[64];
	size_t len = 0;
	bs_image *img;
	bs_entry *e;
	int rc;

	if (argc != 2)
		return 2;
	rc = bs_open(argv[1], BS_OPEN_CREATE, &img);
	if (rc == BS_OK) {
		rc = bs_entry_create(img, "test", "install", 64, NULL, 0, value, sizeof value, NULL);
		bs_close(img);
	}
	if (rc == BS_OK)
		rc = bs_open(argv[1], BS_OPEN_RDONLY, &img);
	if (rc != BS_OK) {
		fprintf(stderr, "%s\n", bs_errmsg());
		return 1;
	}
	rc = bs_find(img, "test", "install", &e);
	if (rc == BS_OK)
		rc = bs_entry_read(img, e, buf, sizeof buf, &len);
	if (rc != BS_OK)
		fprintf(stderr, "%s\n", bs_errmsg());
	bs_close(img);
	if (rc != BS_OK || len != sizeof value || memcmp(buf, value, len) != 0)
		return 1;
	puts("ok");
	return 0;
}
EOF
# shellcheck disable=SC2086 # pkg-config output is a word list
cc -std=c11 -Wall -Wextra -Werror $cflags -o "$tmp/prog-shared" "$tmp/prog.c" $libs ||
	fail "linking against the installed shared library"
# shellcheck disable=SC2086,SC2046
cc -std=c11 -Wall -Wextra -Werror $cflags -o "$tmp/prog-static" "$tmp/prog.c" \
	"$lib/libblobstore.a" $(pkg-config --static --libs-only-other --libs-only-l libtasn1 libcrypto libnbd) -lpthread ||
	fail "linking against the installed static library"

LD_LIBRARY_PATH=$lib ldd "$tmp/prog-shared" | grep "libblobstore.so.$somajor => $lib/" >/dev/null ||
	fail "the program does not load the installed library"
! ldd "$tmp/prog-static" | grep libblobstore >/dev/null || fail "static program needs libblobstore.so"
[ "$(LD_LIBRARY_PATH=$lib "$tmp/prog-shared" "$tmp/shared.img")" = ok ] || fail "shared program"
[ "$("$tmp/prog-static" "$tmp/static.img")" = ok ] || fail "static program"
# Both read each other's images (and the tool's): one format.
"$dest/usr/bin/blobstore" get "$tmp/shared.img" test --name install -o "$tmp/value" ||
	fail "tool reading the program's image"
printf 'installed\0' | cmp - "$tmp/value" || fail "value read by the tool"
echo "install: ok"
