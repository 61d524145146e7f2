#!/usr/bin/env bash
# tools/deps.sh [demo|check|bench|fuzz|vtpm-peer]... - makes sure the Debian packages a
# make target needs are installed.
#
# All present: prints nothing, exits 0.  Some missing and running as root:
# installs them with apt-get (refreshing the package lists only when they are
# empty or the first attempt fails).  Some missing otherwise: prints the exact
# apt-get command to run as root and exits 1.  No target means "check".
# Touches the network only through apt-get.
set -eu

# What each target needs, on top of the build set.
# (librbd-dev: the RBD backend's headers; it loads librbd at run time.)
build_pkgs="build-essential pkg-config libtasn1-6-dev libtasn1-bin libssl-dev libtpms-dev libnbd-dev \
librbd-dev"
# make demo: tpm2-tools for the vTPM session, the independent ASN.1 readers it
# runs over the images (asn1Decoding comes with libtasn1-bin).
demo_pkgs="$build_pkgs dumpasn1 openssl tpm2-tools"
# make check: cmocka unit tests, python3 for test scripts, the interop
# readers (unber/enber are in asn1c), clang with libFuzzer (the header tests
# and the fuzz smoke test); and, so that setting up stays one step, valgrind
# and what the vTPM and network-block-device work uses (libtpms, swtpm,
# tpm2-tools, libnbd, nbdkit), and the UEFI tests' firmware and emulator
# (ovmf, qemu-system-x86), the Secure Boot tools the UEFI tests sign and
# build signature lists with (sbsigntool, efitools), and a throwaway Ceph
# cluster for the RBD tests (ceph-mon, ceph-osd; ceph-common for the ceph,
# rados and rbd commands and librbd).
check_pkgs="$demo_pkgs libcmocka-dev python3 asn1c clang libclang-rt-14-dev valgrind \
libtpms-dev swtpm swtpm-tools tpm2-tools libnbd-dev nbdkit ovmf qemu-system-x86 gnuplot-nox \
sbsigntool efitools ceph-mon ceph-osd ceph-common librbd-dev libtss2-tcti-cmd0 openssl"
# make bench: gnuplot draws the plots; swtpm is the vTPM baseline; the RBD
# benchmarks run on a throwaway Ceph cluster (python3 picks its ports).
bench_pkgs="$build_pkgs gnuplot-nox swtpm ceph-mon ceph-osd ceph-common python3"
# make vtpm-peer: libvirt runs a domain with blobstore-vtpm as swtpm;
# tpm2-tools' suite runs through tpm2-abrmd on a D-Bus session bus.
vtpm_peer_pkgs="$check_pkgs libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients \
tpm2-abrmd libtss2-tcti-tabrmd0 dbus python3-yaml xxd bc iproute2 libtss2-dev"
# make fuzz: libFuzzer ships in clang's runtime package.
fuzz_pkgs="$build_pkgs clang libclang-rt-14-dev"

[ $# -gt 0 ] || set -- check
wanted=""
for target in "$@"; do
	case $target in
	demo) wanted="$wanted $demo_pkgs" ;;
	check) wanted="$wanted $check_pkgs" ;;
	bench) wanted="$wanted $bench_pkgs" ;;
	fuzz) wanted="$wanted $fuzz_pkgs" ;;
	vtpm-peer) wanted="$wanted $vtpm_peer_pkgs" ;;
	build) wanted="$wanted $build_pkgs" ;;
	*)
		echo "usage: tools/deps.sh [build|demo|check|bench|fuzz|vtpm-peer]..." >&2
		exit 2
		;;
	esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "blobstore: not a Debian system (no dpkg-query); make sure these or their" \
		"equivalents are installed:$wanted" >&2
	exit 0
fi

# Installed means dpkg's status is "install ok installed" (abbreviated "ii").
missing=""
for pkg in $wanted; do
	case " $missing " in *" $pkg "*) continue ;; esac
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
	case $status in
	ii*) ;;
	*) missing="$missing $pkg" ;;
	esac
done
[ -n "$missing" ] || exit 0
missing=${missing# }

if [ "$(id -u)" != 0 ]; then
	echo "blobstore: missing Debian packages; run as root:" >&2
	echo "  apt-get install -y $missing" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
install() {
	# shellcheck disable=SC2086 # one word per package
	apt-get install -y --no-install-recommends $missing </dev/null
}
lists_empty() {
	local f
	for f in /var/lib/apt/lists/*_Packages*; do
		[ -e "$f" ] && return 1
	done
	return 0
}

echo "blobstore: installing missing Debian packages: $missing" >&2
if lists_empty; then
	apt-get update </dev/null
fi
if ! install; then
	echo "blobstore: apt-get install failed; refreshing the package lists" >&2
	apt-get update </dev/null
	if ! install; then
		echo "blobstore: could not install:$missing" >&2
		exit 1
	fi
fi
