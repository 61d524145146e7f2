#!/usr/bin/env bash
# tests/integration/test_install.sh - `make install` into a staging DESTDIR
# lays out a usable copy: the core, NBD, RBD and TPM libraries (shared with their
# sonames, static, pkg-config files, export lists of the public API only),
# every public header under include/blobstore/, the tool, its man page and
# the ASN.1 module; programs build against the installed copy through
# pkg-config (dynamically and statically) and run.
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

# Four libraries, each: the real file, the soname link, the development
# link, the static archive, its pkg-config file; and an export list of the
# public API only (nm): nothing unprefixed, nothing internal (bs__*), no
# test backends.  (No "| grep -q" in this file: with pipefail the writer's
# SIGPIPE would fail the pipeline.)
for l in blobstore blobstore-nbd blobstore-tpm blobstore-rbd; do
	[ -f "$lib/lib$l.so.$version" ] || fail "no lib$l.so.$version"
	[ "$(readlink "$lib/lib$l.so.$somajor")" = "lib$l.so.$version" ] ||
		fail "lib$l.so.$somajor does not point at lib$l.so.$version"
	[ "$(readlink "$lib/lib$l.so")" = "lib$l.so.$somajor" ] ||
		fail "lib$l.so does not point at the soname"
	readelf -d "$lib/lib$l.so.$version" | grep "Library soname: \[lib$l.so.$somajor\]" >/dev/null ||
		fail "soname of lib$l is not lib$l.so.$somajor"
	[ -f "$lib/lib$l.a" ] || fail "no lib$l.a"
	ar t "$lib/lib$l.a" | grep '\.o$' >/dev/null || fail "lib$l.a is empty"
	[ -f "$lib/pkgconfig/$l.pc" ] || fail "no $l.pc"
	exports=$(nm -D --defined-only "$lib/lib$l.so.$version" | awk '$3 != "" {print $3}' | sed 's/@.*//')
	extra=$(printf '%s\n' "$exports" | grep -v -e '^bs_[a-z]' -e '^BLOBSTORE_[A-Z_]*0$' || true)
	[ -z "$extra" ] || fail "lib$l exports symbols outside the API: $extra"
	bad=$(printf '%s\n' "$exports" | grep -e '^bs__' -e 'fault' -e '^bs_crc32c' || true)
	[ -z "$bad" ] || fail "lib$l exports internal or test symbols: $bad"
done
nm -D --defined-only "$lib/libblobstore.so.$version" | sed 's/@.*//' | grep ' T bs_image_open$' >/dev/null ||
	fail "bs_image_open is not exported"
nm -D --defined-only "$lib/libblobstore-nbd.so.$version" | sed 's/@.*//' | grep ' T bs_nbd_register$' >/dev/null ||
	fail "bs_nbd_register is not exported"
nm -D --defined-only "$lib/libblobstore-tpm.so.$version" | sed 's/@.*//' | grep ' T bs_tpm_register$' >/dev/null ||
	fail "bs_tpm_register is not exported"
nm -D --defined-only "$lib/libblobstore-rbd.so.$version" | sed 's/@.*//' | grep ' T bs_rbd_register$' >/dev/null ||
	fail "bs_rbd_register is not exported"
# The RBD library loads librbd when it opens an RBD image, never at start.
needed=$(readelf -d "$lib/libblobstore-rbd.so.$version" | grep NEEDED || true)
case $needed in *librbd* | *librados*) fail "libblobstore-rbd.so needs librbd at start: $needed" ;; esac
# The core needs neither libtpms nor libnbd.
needed=$(readelf -d "$lib/libblobstore.so.$version" | grep NEEDED || true)
case $needed in *libtpms* | *libnbd* | *librbd*) fail "libblobstore.so needs libtpms, libnbd or librbd: $needed" ;; esac
# The archives define nothing outside the bs_ prefix.
for l in blobstore blobstore-nbd blobstore-tpm blobstore-rbd; do
	unprefixed=$(nm --defined-only "$lib/lib$l.a" 2>/dev/null | awk 'NF == 3 && $2 ~ /[TDBRC]/ {print $3}' |
		grep -v '^bs_' || true)
	[ -z "$unprefixed" ] || fail "lib$l.a defines unprefixed globals: $unprefixed"
done

# Headers, all of them, identical to the sources, under include/blobstore/.
for h in "$SRCDIR"/include/blobstore/*.h "$SRCDIR"/include/blobstore/sys/*.h; do
	rel=${h#"$SRCDIR/include/"}
	cmp "$h" "$dest/usr/include/$rel" || fail "header $rel"
done
[ -z "$(find "$dest/usr/include" -maxdepth 1 -name '*.h')" ] || fail "headers installed flat"

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
for h in "$dest"/usr/include/blobstore/*.h "$dest"/usr/include/blobstore/sys/*.h; do
	rel=${h#"$dest/usr/include/"}
	# shellcheck disable=SC2086
	printf '#include <%s>\n' "$rel" |
		cc -std=c11 -Wall -Wextra -Werror -pedantic $cflags -fsyntax-only -x c - ||
		fail "installed header $rel does not compile on its own"
done

cat >"$tmp/prog.c" <<'EOF'
/* Stores a value, reopens the image and reads the value back. */
#include <blobstore/blobstore.h>
#include <stdio.h>
#include <string.h>

static int fail(void)
{
	const char *m;
	bs_error_last(&m, NULL);
	fprintf(stderr, "%s\n", m);
	return 1;
}

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
	rc = bs_image_open(argv[1], BS_OPEN_CREATE, &img);
	if (rc == BS_OK) {
		rc = bs_entry_create(img, "test", "install", NULL, value, sizeof value, NULL);
		bs_image_close(img);
	}
	if (rc == BS_OK)
		rc = bs_image_open(argv[1], BS_OPEN_RDONLY, &img);
	if (rc != BS_OK)
		return fail();
	rc = bs_entry_find(img, "test", "install", &e);
	if (rc == BS_OK)
		rc = bs_entry_read(e, buf, sizeof buf, &len);
	if (rc != BS_OK)
		fail();
	bs_image_close(img);
	if (rc != BS_OK || len != sizeof value || memcmp(buf, value, len) != 0)
		return 1;
	puts("ok");
	return 0;
}
EOF
# shellcheck disable=SC2086 # pkg-config output is a word list
cc -std=c11 -Wall -Wextra -Werror $cflags -o "$tmp/prog-shared" "$tmp/prog.c" $libs ||
	fail "linking against the installed shared library"
# Static: the archive, then what pkg-config --static lists for it.
# shellcheck disable=SC2086,SC2046
cc -std=c11 -Wall -Wextra -Werror $cflags -o "$tmp/prog-static" "$tmp/prog.c" \
	"$lib/libblobstore.a" $(pkg-config --static --libs-only-other --libs-only-l libtasn1 libcrypto) -lpthread ||
	fail "linking against the installed static library"
# ... and pkg-config --static alone links too.
# shellcheck disable=SC2086,SC2046
cc -std=c11 -Wall -Wextra -Werror $cflags -o "$tmp/prog-pcstatic" "$tmp/prog.c" \
	$(pkg-config --static --libs blobstore) || fail "pkg-config --static --libs blobstore does not link"

# The NBD, TPM and RBD libraries link through their own pkg-config files.
printf '#include <blobstore/nbd.h>\nint main(void) { return bs_nbd_register() == BS_OK ? 0 : 1; }\n' >"$tmp/nbd.c"
printf '#include <blobstore/tpm.h>\nint main(void) { return bs_tpm_image() == NULL ? 0 : 1; }\n' >"$tmp/tpm.c"
printf '#include <blobstore/rbd.h>\nint main(void) { return bs_rbd_register() == BS_OK ? 0 : 1; }\n' >"$tmp/rbd.c"
for l in nbd tpm rbd; do
	# shellcheck disable=SC2086,SC2046
	cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags blobstore-$l) -o "$tmp/$l" "$tmp/$l.c" \
		$(pkg-config --libs blobstore-$l) || fail "linking through blobstore-$l.pc"
	LD_LIBRARY_PATH=$lib "$tmp/$l" || fail "a program of blobstore-$l"
done

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
