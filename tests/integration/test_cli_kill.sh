#!/usr/bin/env bash
# tests/integration/test_cli_kill.sh - 'blobstore compact' killed (SIGKILL)
# at random moments, many times over, on an image of a few MB: the image
# always opens, passes check and holds every entry; the copy a killed
# compaction leaves (IMAGE.tmp-XXXXXXXX) never piles up, because the next
# writable open removes it and says so on standard error; no temporary
# file is left after a writable command.  Half of the kills land at a
# random moment of the whole run, half as soon as the copy appears (so
# that leftovers are made even where compaction is fast).  The same for
# 'format --force' and its .IMAGE.blobstore-XXXXXX, which a writable
# command or the next format removes unless a running command holds it.
# shellcheck source=cli_common.sh
. "$(dirname "$0")/cli_common.sh"

runs=24
quick && runs=10
runs=${BS_KILL_RUNS:-$runs}
seed=${BS_KILL_SEED:-$RANDOM}
echo "seed $seed (BS_KILL_SEED=$seed reruns this), $runs kills"

img=$tmp/vm.img
bs format "$img" >/dev/null
entries=1 # bs.image
for i in 1 2 3 4 5; do
	head -c 524288 /dev/urandom >"$tmp/blob$i"
	bs put "$img" vtpm --name "n$i" "$tmp/blob$i"
	entries=$((entries + 1))
done
bs rm "$img" vtpm --name n5 # free space for compact to reclaim
entries=$((entries - 1))
[ "$(stat -c %s "$img")" -gt 4000000 ] || fail "the image is smaller than a few MB"

# killer MODE SEED - runs 'blobstore compact IMAGE' and kills it with SIGKILL:
# MODE random after a random delay up to the time a whole compaction takes,
# MODE watch as soon as the temporary copy exists.  Prints killed or
# finished.  The run's standard error goes to $tmp/killed.err.
cat >"$tmp/killer.py" <<'PY'
import os, random, signal, subprocess, sys, time
blobstore, img, mode, seed, longest = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
cmd = sys.argv[6] if len(sys.argv) > 6 else "compact"
rng = random.Random(seed)
d, base = os.path.split(img)
prefix = base + ".tmp-" if cmd == "compact" else "." + base + ".blobstore-"
argv = [blobstore, "compact", img] if cmd == "compact" else [blobstore, "format", "--force", img]
with open(os.path.join(d, "killed.err"), "w") as err:
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
    if mode == "random":
        time.sleep(rng.uniform(0, longest))
    else:
        while p.poll() is None and not any(n.startswith(prefix) for n in os.listdir(d or ".")):
            pass
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
    rc = p.wait()
print("killed" if rc == -signal.SIGKILL else "finished %d" % rc)
PY
# How long a whole compaction takes here.
longest=$(python3 -c 'import subprocess, sys, time
t = time.monotonic(); subprocess.run([sys.argv[1], "compact", sys.argv[2]], check=True, stdout=subprocess.DEVNULL)
print(1.5 * (time.monotonic() - t))' "$BLOBSTORE" "$img")

leftovers() { find "$tmp" -maxdepth 1 -name 'vm.img.tmp-*' -printf '%f %s\n' | sort; }

# writable_clean - a writable command removes every leftover, printing one
# line for each, and leaves none.
writable_clean() {
	local before
	before=$(leftovers)
	expect_exit 0 bs put "$img" marker --name last "$tmp/blob1"
	while read -r name size; do
		[ -n "$name" ] || continue
		err_has "blobstore: $img: removed $tmp/$name ($size octets) left by an interrupted compaction"
	done <<<"$before"
	[ -z "$(leftovers)" ] || fail "a writable command left $(leftovers)"
	[ -z "$before" ] || [ "$(wc -l <"$tmp/err")" -eq "$(wc -l <<<"$before")" ] ||
		{ cat "$tmp/err" >&2; fail "more on standard error than the removals"; }
}

killed=0 made=0 marker=0
for k in $(seq "$runs"); do
	mode=random
	[ $((k % 2)) -eq 1 ] && mode=watch
	out=$(python3 "$tmp/killer.py" "$BLOBSTORE" "$img" "$mode" "$((seed * 1000 + k))" "$longest")
	[ "$out" = killed ] && killed=$((killed + 1))
	case $out in killed | "finished 0") ;; *) fail "run $k ($mode): compact $out" ;; esac
	left=$(leftovers)
	n=$(grep -c . <<<"$left" || true)
	[ "$n" -le 1 ] || fail "run $k ($mode): $n leftovers pile up: $left"
	[ "$n" -eq 1 ] && made=$((made + 1))
	# The image is the old or the new one, whole; a read-only open removes
	# nothing.
	bs check "$img" >"$tmp/check.out" 2>&1 || { cat "$tmp/check.out" >&2; fail "run $k ($mode): check fails"; }
	grep -qF "$img: $((entries + marker)) entries checked: no problems" "$tmp/check.out" ||
		{ cat "$tmp/check.out" >&2; fail "run $k ($mode): entries missing"; }
	[ "$(leftovers)" = "$left" ] || fail "run $k: a read-only check removed a leftover"
	if [ $((k % 3)) -eq 0 ]; then
		writable_clean
		marker=1
	fi
done
echo "$killed of $runs compactions killed, $made left a copy behind"
[ "$made" -ge 3 ] || fail "only $made kills left a copy: the test did not test the clean-up"
writable_clean
[ -z "$(find "$tmp" -maxdepth 1 -name '*.tmp-*')" ] || fail "temporary files left"
for i in 1 2 3 4; do
	bs get "$img" vtpm --name "n$i" -o "$tmp/got" --force
	cmp -s "$tmp/got" "$tmp/blob$i" || fail "entry n$i changed"
done
checked "$img"

# -q and --json say nothing on standard error (--json's output unchanged).
cp "$img" "$img.tmp-0123abcd"
expect_exit 0 bs -q put "$img" marker --name last "$tmp/blob2"
[ ! -s "$tmp/err" ] || { cat "$tmp/err" >&2; fail "-q printed the removal"; }
[ ! -e "$img.tmp-0123abcd" ] || fail "-q: the leftover is still there"
cp "$img" "$img.tmp-0123abcd"
expect_exit 0 bs put --json "$img" marker --name last "$tmp/blob3"
[ ! -s "$tmp/err" ] || { cat "$tmp/err" >&2; fail "--json printed the removal on standard error"; }
json "$tmp/out"
[ "$(jq_py "$tmp/out" 'sorted(d)')" = "['action', 'entry', 'image']" ] || fail "put --json changed its shape"
[ ! -e "$img.tmp-0123abcd" ] || fail "--json: the leftover is still there"

# ---- what killed runs of format --force (and salvage, get -o) leave ---------------
# .IMAGE.blobstore-XXXXXX: the tool holds it locked while it runs; the next
# writable command, or format --force, removes it once nobody holds it.
bs format --force "$img" >/dev/null
fmade=0
for k in $(seq 6); do
	out=$(python3 "$tmp/killer.py" "$BLOBSTORE" "$img" watch "$k" 1 format)
	case $out in killed | "finished 0") ;; *) fail "format run $k: $out" ;; esac
	bs check "$img" >/dev/null || fail "format run $k: the image does not check"
	ls -A "$tmp" | grep -q '^\.vm\.img\.blobstore-' && fmade=$((fmade + 1))
done
echo "$fmade of 6 killed formats left a temporary file"
left=$(ls -A "$tmp" | grep '^\.vm\.img\.blobstore-' || true)
printf 'x' >"$tmp/.vm.img.blobstore-Unlk01"
ln -s "$tmp/blob1" "$tmp/.vm.img.blobstore-Link01"
printf 'x' >"$tmp/.vm.img.blobstore-Held01"
python3 - "$tmp/.vm.img.blobstore-Held01" "$tmp/held" <<'PY' &
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, 37, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))  # F_OFD_SETLK
open(sys.argv[2], "w").close()
time.sleep(30)
PY
holder=$!
for _ in $(seq 100); do [ -e "$tmp/held" ] && break; sleep 0.05; done
expect_exit 0 bs put "$img" marker --name last "$tmp/blob1"
for f in $left .vm.img.blobstore-Unlk01; do
	err_has "blobstore: $img: removed $tmp/$f ("
	err_has "octets) left by an interrupted blobstore command"
	[ ! -e "$tmp/$f" ] || fail "$f is still there"
done
[ -e "$tmp/.vm.img.blobstore-Held01" ] || fail "removed a temporary file a run holds locked"
[ -L "$tmp/.vm.img.blobstore-Link01" ] && [ -e "$tmp/blob1" ] || fail "followed or removed a symbolic link"
kill "$holder"
wait "$holder" 2>/dev/null || true
bs -q format --force "$img" || fail "format --force"
[ ! -e "$tmp/.vm.img.blobstore-Held01" ] || fail "format --force kept an abandoned temporary file"
rm "$tmp/.vm.img.blobstore-Link01"
checked "$img"
echo "cli kill: ok"
