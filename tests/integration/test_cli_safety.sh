#!/usr/bin/env bash
# tests/integration/test_cli_safety.sh - nothing is destroyed without
# --force (format over an image or a file, get -o over a file, rm of a
# refused entry or of bs.key, import-swtpm over a TPM), and with --force it
# is replaced whole through a temporary file; no silent waits (put on a
# terminal, --wait=SECONDS) and no silent no-ops; a failed import leaves no
# image behind.
# shellcheck source=cli_common.sh
. "$(dirname "$0")/cli_common.sh"

img=$tmp/vm.img
bs format "$img" >/dev/null
printf 'state' | bs put "$img" vtpm --name permall

# ---- format ------------------------------------------------------------------
cp "$img" "$tmp/orig.img"
expect_exit 8 bs format "$img"
err_has "image already exists, with 1 entry: --force formats it again, deleting it"
cmp "$img" "$tmp/orig.img" || fail "format without --force changed the image"
printf 'someone else'"'"'s data' >"$tmp/other"
expect_exit 8 bs format "$tmp/other"
err_has "--force formats it anyway"
chmod 0640 "$tmp/other"
bs format --force "$tmp/other" >/dev/null || fail "format --force of a file"
[ "$(stat -c %a "$tmp/other")" = 640 ] || fail "format --force changed the file's mode"
bs format --force "$img" >"$tmp/out" || fail "format --force of an image"
expect_exit 2 bs get "$img" vtpm --name permall
[ "$(bs info --json "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entry_count"])')" = 0 ] ||
	fail "format --force kept entries"
# Not while another writer holds the image.
cp "$tmp/orig.img" "$img"
python3 - "$img" "$tmp/locked" <<'PY' &
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, 37, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))  # F_OFD_SETLK
open(sys.argv[2], "w").close()
time.sleep(30)
PY
holder=$!
for _ in $(seq 100); do [ -e "$tmp/locked" ] && break; sleep 0.05; done
expect_exit 4 bs format --force "$img"
err_has "locked by another writer"
cmp "$img" "$tmp/orig.img" || fail "format --force replaced an image in use"
# --wait=SECONDS gives up after that long, with exit status 4.
start=$(date +%s%N)
expect_exit 4 bs --wait=0.5 put "$img" vtpm --name permall "$tmp/orig.img"
err_has "still locked after waiting"
elapsed=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed" -ge 450 ] || fail "--wait=0.5 gave up after $elapsed ms"
expect_exit 1 bs --wait=soon list "$img"
kill "$holder"
wait "$holder" 2>/dev/null || true

# ---- get -o --------------------------------------------------------------------
printf 'precious' >"$tmp/file"
expect_exit 8 bs get "$img" vtpm --name permall -o "$tmp/file"
err_has "exists (8 octets): --force replaces it"
[ "$(cat "$tmp/file")" = precious ] || fail "get -o replaced a file without --force"
bs get "$img" vtpm --name permall -o "$tmp/file" --force || fail "get -o --force"
[ "$(cat "$tmp/file")" = state ] || fail "get -o --force wrote other data"
: >"$tmp/empty"
bs get "$img" vtpm --name permall -o "$tmp/empty" || fail "get -o into an empty file"
bs get "$img" vtpm --name permall -o "$tmp/new" || fail "get -o into a new file"
[ "$(cat "$tmp/new")" = state ] || fail "get -o into a new file"
ls "$tmp"/.*.blobstore-* >/dev/null 2>&1 && fail "get -o left a temporary file"
# Through a symbolic link the file it names counts, and stays where it is.
printf 'precious' >"$tmp/target"
ln -s target "$tmp/link"
expect_exit 8 bs get "$img" vtpm --name permall -o "$tmp/link"
[ "$(cat "$tmp/target")" = precious ] || fail "get -o replaced a file through a link"
bs get "$img" vtpm --name permall -o "$tmp/link" --force || fail "get -o --force through a link"
[ -L "$tmp/link" ] && [ "$(cat "$tmp/target")" = state ] || fail "get -o --force through a link"

# ---- rm --------------------------------------------------------------------------
printf 'future' | bs put "$img" future --mandatory x.new=int:1
expect_exit 6 bs rm "$img" future
expect_exit 6 bs get "$img" future # still there, still refused
bs rm --force "$img" future || fail "rm --force of a refused entry"
expect_exit 8 bs rm "$img" bs.image --force
head -c 32 /dev/urandom >"$tmp/key"
bs encrypt-init "$img" --key-file "$tmp/key" >/dev/null 2>&1
expect_exit 8 bs rm "$img" bs.key
err_has "--force removes it"
bs rm --force "$img" bs.key || fail "rm --force of bs.key with no encrypted entry"
bs info --json "$img" | grep -q '"encrypted": false' || fail "encryption still set up after rm of bs.key"

# ---- put: no waiting in silence, no ignored options ------------------------------
if command -v script >/dev/null; then
	rc=0
	script -qec "$BLOBSTORE put $img typed" /dev/null </dev/null >"$tmp/out" 2>&1 || rc=$?
	[ "$rc" -eq 1 ] || { cat "$tmp/out"; fail "put on a terminal without FILE exited $rc"; }
	grep -q "standard input is a terminal" "$tmp/out" || fail "put on a terminal: message"
	# With '-' it prompts, then reads until end of input (^D).
	rc=0
	script -qec "sh -c 'sleep 0.3; printf \"typed\\004\"' | script -qec '$BLOBSTORE put $img typed -' /dev/null" \
		/dev/null </dev/null >"$tmp/out" 2>&1 || rc=$?
	grep -q "end it with Ctrl-D" "$tmp/out" || { cat "$tmp/out"; fail "put - on a terminal: no prompt"; }
fi
printf 'x' | bs put "$img" small --capacity 4K
expect_exit 8 bs put "$img" small --capacity 1K - </dev/null
err_has "capacities never shrink"

# ---- import-swtpm over a TPM; a failed import leaves no image -----------------------
head -c 1200 /dev/urandom | bs put "$img" tpm2.libtpms --name permall -
bs export-swtpm "$img" "$tmp/state" >/dev/null
bs import-swtpm "$tmp/tpm.img" "$tmp/state" >/dev/null
cp "$tmp/tpm.img" "$tmp/tpm.orig"
expect_exit 8 bs import-swtpm "$tmp/tpm.img" "$tmp/state"
err_has "already holds a TPM"
cmp "$tmp/tpm.img" "$tmp/tpm.orig" || fail "import-swtpm replaced a TPM without --force"
bs import-swtpm --force "$tmp/tpm.img" "$tmp/state" >/dev/null || fail "import-swtpm --force"
expect_exit 8 bs export-swtpm "$img" "$tmp/state"
err_has "already holds swtpm TPM 2.0 state"
head -c 32 /dev/urandom >"$tmp/imgkey"
expect_exit 7 bs --key-file "$tmp/imgkey" import-swtpm "$tmp/fresh.img" "$tmp/state"
err_has "not set up for encryption"
[ ! -e "$tmp/fresh.img" ] || fail "a failed import left an image behind"
echo "cli safety: ok"
