#!/usr/bin/env bash
# test_vtpm_nbd.sh - the vTPM server keeps its state on a network block
# device: blobstore-vtpm --image nbd+unix:///?socket=... on an nbdkit export
# (file plugin, so the export outlives the server); NV data survives a
# clean restart (a resume: no TPM2_Startup), a kill -9 (a cold start:
# TPM_RC_INITIALIZE until TPM2_Startup) and a kill -9 with --flags
# startup-clear; the export reads back as a checked image.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=vtpm_common.sh
. "$here/vtpm_common.sh"
for t in tpm2_startup tpm2_nvwrite nbdkit python3; do
	command -v $t >/dev/null || { echo "SKIP: needs tpm2-tools, nbdkit and python3"; exit 0; }
done
ls /usr/lib/*/libtss2-tcti-swtpm.so* >/dev/null 2>&1 ||
	{ echo "SKIP: needs libtss2-tcti-swtpm0 (tpm2-tools)"; exit 0; }

nbd_pid=
stop_nbd() { [ -z "$nbd_pid" ] || { kill "$nbd_pid" 2>/dev/null; wait "$nbd_pid" 2>/dev/null || true; }; }
trap 'vtpm_cleanup_all' EXIT
vtpm_cleanup_all() { local keep=$tmp; [ -z "$vtpm_pid" ] || kill -9 "$vtpm_pid" 2>/dev/null || true; vtpm_pid=; stop_nbd; tmp=$keep; vtpm_cleanup; }
truncate -s 4M "$tmp/export.raw"
nbdkit --unix "$tmp/nbd.sock" --foreground --exit-with-parent file "$tmp/export.raw" &
nbd_pid=$!
for _ in $(seq 200); do [ -S "$tmp/nbd.sock" ] && break; sleep 0.02; done
[ -S "$tmp/nbd.sock" ] || fail "nbdkit did not start"
uri="nbd+unix:///?socket=$tmp/nbd.sock"

port=$(free_port_pair)
[ -n "$port" ] || fail "no free port pair"
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
start() { vtpm_start --image "$uri" --port "$port" --flags not-need-init "$@"; }

echo "== a TPM manufactured on $uri"
"$BLOBSTORE" -q format "$uri"
start
tpm2_startup -c
tpm2_nvdefine -Q 0x1500020 -C o -s 16 -a "ownerread|ownerwrite"
printf 'on a block device' >"$tmp/nv.in"
head -c 16 "$tmp/nv.in" >"$tmp/nv.want"
tpm2_nvwrite -Q 0x1500020 -C o -i "$tmp/nv.want"

echo "== clean restart (SIGTERM) right after the NV write: a resume, no TPM2_Startup"
vtpm_stop TERM
"$BLOBSTORE" list "$uri" >"$tmp/list1"
grep 'tpm2.libtpms *volatilestate' "$tmp/list1" >/dev/null ||
	{ cat "$tmp/list1"; fail "no volatilestate saved on NBD at SIGTERM"; }
start
grep 'resumed from the volatile state' "$tmp/vtpm.log" >/dev/null || fail "not resumed on NBD"
tpm2_nvread -Q 0x1500020 -C o -s 16 -o "$tmp/nv.out" || fail "nvread after the resume"
cmp "$tmp/nv.want" "$tmp/nv.out" || fail "NV data lost across a restart on NBD"

# The resume consumed the volatile state, so a crash now restarts cold: NV
# kept, but the TPM waits for TPM2_Startup (TPM_RC_INITIALIZE before it), as
# swtpm does after a crash without --flags startup-clear.
echo "== kill -9: a cold start; TPM2_Startup needed, then the NV index is there"
vtpm_stop KILL
: >"$tmp/vtpm.log"
start
grep -q 'resumed' "$tmp/vtpm.log" && fail "resumed from a stale volatile state after kill -9"
if tpm2_nvread -Q 0x1500020 -C o -s 16 -o "$tmp/nv.out" 2>/dev/null; then
	fail "a cold start answered before TPM2_Startup"
fi
grep -q 'TPM2_GetCapability .*-> rc 0x100,' "$tmp/vtpm.log" ||
	fail "a command before TPM2_Startup was not answered TPM_RC_INITIALIZE"
tpm2_startup -c
tpm2_nvread -Q 0x1500020 -C o -s 16 -o "$tmp/nv.out"
cmp "$tmp/nv.want" "$tmp/nv.out" || fail "NV data lost across kill -9 on NBD"

echo "== kill -9, restart with --flags startup-clear: usable at once"
vtpm_stop KILL
start --flags startup-clear
grep -q 'TPM2_Startup(CLEAR) -> rc 0x0' "$tmp/vtpm.log" || fail "startup-clear not sent"
tpm2_nvread -Q 0x1500020 -C o -s 16 -o "$tmp/nv.out"
cmp "$tmp/nv.want" "$tmp/nv.out" || fail "NV data lost across kill -9 (startup-clear) on NBD"
vtpm_stop TERM

echo "== the export is a checked image holding the TPM state"
"$BLOBSTORE" check "$uri"
"$BLOBSTORE" list "$uri" >"$tmp/list"
grep 'tpm2.libtpms *permall' "$tmp/list" >/dev/null || { cat "$tmp/list"; fail "no permall on the export"; }
echo "vtpm on nbd: ok"
