#!/usr/bin/env bash
# tests/integration/test_cli_json.sh - docs/JSON.md is the contract: every
# command's --json output (and every error under --json) is checked against
# it: one object per run ending in a newline, snake_case keys, every key of
# a concept present (null when it has no value) and no other, the types of
# the values, collections as arrays, the error object on standard error with
# nothing on standard output.  The uefi subcommands too.
# shellcheck source=cli_common.sh
. "$(dirname "$0")/cli_common.sh"

out=$tmp/json
mkdir "$out"
img=$tmp/vm.img
head -c 32 /dev/urandom >"$tmp/key"
# run NAME STATUS COMMAND... - runs COMMAND with --json, which must exit
# with STATUS; keeps its standard output and error as NAME.out, NAME.err.
run() {
	local name=$1 want=$2 rc=0
	shift 2
	"$@" --json >"$out/$name.out" 2>"$out/$name.err" || rc=$?
	[ "$rc" -eq "$want" ] || { cat "$out/$name.err" >&2; fail "$name: '$*' exited $rc, expected $want"; }
}

run format 0 bs format "$img"
printf 'permall state' >"$tmp/permall"
run put 0 bs put "$img" vtpm --name permall --attr serial=007 --attr n=int:5 --attr f \
	--attr h=hex:00ff --attr b=bool:true --attr o=der:06032a0304 --check sha256 "$tmp/permall"
printf 'more' | bs put "$img" nvram --name vars --capacity 4K -
printf 'old' | bs put "$img" gone
bs rm "$img" gone
run list 0 bs list "$img"
run list-all 0 bs list --all "$img"
run info 0 bs info "$img"
run info-entry 0 bs info "$img" vtpm --name permall
run get 0 bs get "$img" vtpm --name permall
run get-o 0 bs get "$img" vtpm --name permall -o "$tmp/got"
run attr 0 bs attr "$img" vtpm --name permall
run attr-all 0 bs attr "$img" vtpm --name permall --all --set note=str:x
run check 0 bs check "$img"
run check-schema 0 bs check --schema "$img"
run dump 0 bs dump "$img"
run resize 0 bs resize "$img" nvram --name vars 8K
run grow 0 bs grow "$img" 1M
run compact 0 bs compact "$img"
run rm 0 bs rm "$img" nvram --name vars
# A TPM's state: out to an swtpm directory and back into another image.
head -c 1200 /dev/urandom | bs put "$img" tpm2.libtpms --name permall -
run export-swtpm 0 bs export-swtpm "$img" "$tmp/state"
run import-swtpm 0 bs import-swtpm "$tmp/tpm.img" "$tmp/state"
# Encryption.
run encrypt-init 0 bs encrypt-init "$img" --key-file "$tmp/key"
printf 'secret' | bs put "$img" secret --key-file "$tmp/key"
run list-locked 0 bs list "$img"
run list-key 0 bs list "$img" --key-file "$tmp/key"
python3 -c 'import os; print(os.urandom(32).hex())' >"$tmp/key2"
run rekey 0 bs rekey "$img" --key-file "$tmp/key" --new-key-file "$tmp/key2"
run check-unauth 0 bs check "$img"
# Damage: check's report, list's statuses, salvage's report.
cp "$img" "$tmp/flip.img"
off=$(python3 -c 'import sys; print(open(sys.argv[1],"rb").read().find(b"permall state"))' "$tmp/flip.img")
printf '\377' | dd of="$tmp/flip.img" bs=1 seek="$off" conv=notrunc status=none
run check-damaged 3 bs check "$tmp/flip.img"
run list-damaged 0 bs list "$tmp/flip.img"
head -c 300 "$img" >"$tmp/cut.img"
run check-unopenable 3 bs check "$tmp/cut.img"
run salvage 3 bs salvage "$tmp/cut.img" "$tmp/new.img"
run salvage-whole 0 bs salvage "$img" "$tmp/whole.img"
# Errors, one per kind of failure, each as JSON on standard error.
run err-usage 1 bs list
run err-usage-global 1 bs --bogus list "$img"
run err-notfound 2 bs get "$img" nosuch
run err-missing 2 bs info "$tmp/missing.img"
run err-corrupt 3 bs list "$tmp/cut.img"
run err-key 7 bs get "$img" secret
run err-exists 8 bs format "$img"
run err-output 8 bs get "$tmp/tpm.img" tpm2.libtpms --name permall -o "$tmp/got"
run err-salvage 8 bs salvage "$tmp/cut.img" "$tmp/new.img"
run err-swtpm 8 bs import-swtpm "$tmp/tpm.img" "$tmp/state"
run err-refused 8 bs rm "$img" bs.key
# UEFI variables: Debian's Secure Boot store, then each subcommand.
vars=/usr/share/OVMF/OVMF_VARS_4M.ms.fd
[ -f "$vars" ] || fail "no $vars (package ovmf)"
uimg=$tmp/uefi.img
run uefi-import 0 bs uefi import "$uimg" "$vars"
run uefi-list 0 bs uefi list "$uimg"
run uefi-get 0 bs uefi get "$uimg" PK
run uefi-get-o 0 bs uefi get "$uimg" KEK -o "$tmp/kek"
printf '\005\000' >"$tmp/timeout"
run uefi-set 0 bs uefi set "$uimg" Timeout -i "$tmp/timeout"
run uefi-rm 0 bs uefi rm "$uimg" Timeout
run uefi-export 0 bs uefi export "$uimg" "$tmp/vars.json"
run uefi-export-fd 0 bs --json uefi export "$uimg" "$tmp/vars.fd"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/db.key" -out "$tmp/db.pem" -days 1 \
	-subj /CN=json-test-db >/dev/null 2>&1 || fail "openssl cannot make a certificate"
run uefi-enroll 0 bs uefi enroll "$uimg" --add-db 11111111-2222-3333-4444-555555555555 "$tmp/db.pem"
run err-uefi-import 8 bs uefi import "$uimg" "$vars"
run err-uefi-export 8 bs uefi export "$uimg" "$tmp/vars.json"
run err-uefi-get 2 bs uefi get "$uimg" NoSuchVariable
head -c 100 /dev/urandom >"$tmp/garbage"
run err-uefi-set 3 bs uefi set "$uimg" db -i "$tmp/garbage"
# --json before the command works the same.
bs --json info "$img" >"$out/info-global.out"

python3 - "$out" <<'PY' || fail "JSON output does not follow docs/JSON.md"
import json, os, re, sys

d = sys.argv[1]
errors = []

def err(where, msg):
    errors.append(f"{where}: {msg}")

HEX = re.compile(r'^([0-9a-f]{2})*$')
def is_int(v): return isinstance(v, int) and not isinstance(v, bool)
def check_keys(where, obj, want):
    if not isinstance(obj, dict):
        err(where, f"not an object: {obj!r}")
        return False
    for k in obj:
        if not re.match(r'^[a-z][a-z0-9_]*$', k):
            err(where, f"key {k!r} is not snake_case")
    missing, extra = set(want) - set(obj), set(obj) - set(want)
    if missing:
        err(where, f"keys missing: {sorted(missing)}")
    if extra:
        err(where, f"keys not in the contract: {sorted(extra)}")
    return not missing

def typ(where, obj, key, *kinds):
    v = obj.get(key)
    ok = any((k == 'int' and is_int(v)) or (k == 'null' and v is None) or
             (k == 'str' and isinstance(v, str)) or (k == 'bool' and isinstance(v, bool)) or
             (k == 'list' and isinstance(v, list)) or (k == 'obj' and isinstance(v, dict))
             for k in kinds)
    if not ok:
        err(where, f"{key} = {v!r} is not {'|'.join(kinds)}")
    return ok

ENTRY = ["type", "name", "offset", "length", "size", "capacity", "check", "encryption",
         "status", "reason"]
STATUSES = {"ok", "previous", "damaged", "locked", "refused"}
LOST = {"damaged", "duplicate", "stale", "undecryptable"}

def entry(where, e, statuses=STATUSES, extra=()):
    if not check_keys(where, e, ENTRY + list(extra)):
        return
    # A lost range may hold no entry whose type could be read.
    typ(where, e, "type", *(("str", "null") if statuses is LOST else ("str",)))
    typ(where, e, "name", "str", "null")
    for k in ("offset", "length"):
        typ(where, e, k, "int")
    for k in ("size", "capacity"):
        typ(where, e, k, "int", "null")
    if e["check"] not in (None, "crc32c", "sha256"):
        err(where, f"check {e['check']!r}")
    if e["encryption"] not in (None, "aes-256-gcm", "chacha20-poly1305"):
        err(where, f"encryption {e['encryption']!r}")
    if e["status"] not in statuses:
        err(where, f"status {e['status']!r}")
    if (e["status"] == "ok") != (e["reason"] is None):
        err(where, f"reason {e['reason']!r} with status {e['status']!r}")
    typ(where, e, "reason", "str", "null")

IMAGE = ["image", "id", "length", "dir_end", "used", "free", "free_holes", "free_tail",
         "entry_count", "library_entry_count", "refused_count", "encrypted", "kdf",
         "encrypted_entry_count"]

def image(where, o, extra=()):
    if not check_keys(where, o, IMAGE + list(extra)):
        return
    typ(where, o, "image", "str")
    if not (isinstance(o["id"], str) and len(o["id"]) == 32 and HEX.match(o["id"])):
        err(where, f"id {o['id']!r}")
    for k in IMAGE[2:11] + ["encrypted_entry_count"] + list(extra):
        typ(where, o, k, "int")
    typ(where, o, "encrypted", "bool")
    typ(where, o, "kdf", "str", "null")
    if o["free"] != o["free_holes"] + o["free_tail"]:
        err(where, "free is not free_holes + free_tail")

def attribute(where, a):
    if not check_keys(where, a, ["name", "mandatory", "read_write", "type", "value", "der"]):
        return
    typ(where, a, "name", "str")
    typ(where, a, "mandatory", "bool")
    typ(where, a, "read_write", "bool")
    typ(where, a, "type", "str", "null")
    if not (isinstance(a["der"], str) and HEX.match(a["der"])):
        err(where, f"der {a['der']!r}")
    want = {"INTEGER": int, "BOOLEAN": bool, "UTF8String": str, "OCTET STRING": str}
    t = a["type"]
    if t in want and not (type(a["value"]) is want[t]):
        err(where, f"value {a['value']!r} of a {t}")
    if t == "OCTET STRING" and not HEX.match(a["value"]):
        err(where, "OCTET STRING value not hexadecimal")
    if (t is None) != (a["der"] == "") or (t in (None, "NULL")) != (a["value"] is None):
        err(where, f"flag or NULL: type {t!r}, value {a['value']!r}, der {a['der']!r}")

def problem(where, p):
    if not check_keys(where, p, ["severity", "code", "entry", "offset", "message"]):
        return
    if p["severity"] not in ("error", "warning"):
        err(where, f"severity {p['severity']!r}")
    typ(where, p, "code", "str", "null")
    if (p["severity"] == "error") != (p["code"] is not None):
        err(where, "code and severity disagree")
    if typ(where, p, "entry", "obj", "null") and p["entry"] is not None:
        check_keys(where + ".entry", p["entry"], ["type", "name"])
    typ(where, p, "offset", "int", "null")
    typ(where, p, "message", "str")

def load(name):
    path = os.path.join(d, name + ".out")
    text = open(path, encoding="utf-8").read()
    if not text.endswith("\n"):
        err(name, "output does not end in a newline")
    try:
        obj = json.loads(text)
    except ValueError as e:
        err(name, f"not one JSON document: {e}")
        return {}
    if not isinstance(obj, dict):
        err(name, "not an object (rule 1)")
        return {}
    if open(os.path.join(d, name + ".err")).read().strip().startswith("{") if os.path.exists(os.path.join(d, name + ".err")) else False:
        err(name, "an error object on standard error of a command that succeeded")
    return obj

def entries(name, o, key="entries", **kw):
    if typ(name, o, key, "list"):
        for i, e in enumerate(o[key]):
            entry(f"{name}.{key}[{i}]", e, **kw)

for n in ("format", "info", "encrypt-init", "rekey"):
    image(n, load(n))
image("info-global", json.loads(open(os.path.join(d, "info-global.out")).read()))
image("compact", load("compact"), extra=["reclaimed"])
image("grow", load("grow"), extra=["reserved"])
for n in ("list", "list-all", "list-locked", "list-key", "list-damaged"):
    o = load(n)
    check_keys(n, o, ["image", "entries"])
    entries(n, o)
for n in ("info-entry", "resize", "rm"):
    o = load(n)
    check_keys(n, o, ["image", "entry"])
    entry(n + ".entry", o.get("entry"))
o = load("put")
check_keys("put", o, ["image", "action", "entry"])
if o.get("action") not in ("created", "replaced", "encrypted"):
    err("put", f"action {o.get('action')!r}")
entry("put.entry", o.get("entry"))
for n in ("get", "get-o"):
    o = load(n)
    check_keys(n, o, ["image", "output", "data", "entry"])
    entry(n + ".entry", o.get("entry"))
    if n == "get" and o.get("data") != "permall state".encode().hex():
        err(n, "data is not the entry's data in hexadecimal")
    if n == "get-o" and o.get("data") is not None:
        err(n, "data with -o")
for n in ("attr", "attr-all"):
    o = load(n)
    check_keys(n, o, ["image", "entry", "attributes"])
    entry(n + ".entry", o.get("entry"))
    names = []
    for i, a in enumerate(o.get("attributes", [])):
        attribute(f"{n}.attributes[{i}]", a)
        names.append(a.get("name"))
    if ("bs.slots" in names) != (n == "attr-all"):
        err(n, "library attributes shown without --all, or hidden with it")
    vals = {a["name"]: (a["type"], a["value"]) for a in o.get("attributes", [])}
    if vals.get("serial") != ("UTF8String", "007") or vals.get("n") != ("INTEGER", 5):
        err(n, f"serial=007 and n=int:5 give {vals.get('serial')}, {vals.get('n')}")
CHECK = ["image", "ok", "schema", "entry_count", "library_entry_count",
         "unauthenticated_count", "problem_count", "hint", "problems"]
for n in ("check", "check-schema", "check-unauth", "check-damaged", "check-unopenable"):
    o = load(n)
    check_keys(n, o, CHECK)
    typ(n, o, "ok", "bool")
    typ(n, o, "hint", "str", "null")
    for k in CHECK[3:7]:
        typ(n, o, k, "int")
    for i, p in enumerate(o.get("problems", [])):
        problem(f"{n}.problems[{i}]", p)
    if o.get("ok") != (n in ("check", "check-schema", "check-unauth")):
        err(n, f"ok is {o.get('ok')}")
if load("check-unauth").get("unauthenticated_count") != 1:
    err("check-unauth", "unauthenticated_count is not 1")
if "damaged" not in [e["status"] for e in load("list-damaged").get("entries", [])]:
    err("list-damaged", "no entry has the status damaged")
if [e["status"] for e in load("list-locked").get("entries", []) if e["type"] == "secret"] != ["locked"]:
    err("list-locked", "the encrypted entry is not locked without the key")
o = load("dump")
check_keys("dump", o, ["image", "elements"])
for i, el in enumerate(o.get("elements", [])):
    w = f"dump.elements[{i}]"
    if check_keys(w, el, ["kind", "offset", "length", "entry"]):
        if el["kind"] not in ("directory", "entry", "free", "pad", "end", "unused", "unknown"):
            err(w, f"kind {el['kind']!r}")
        if (el["kind"] == "entry") != (el["entry"] is not None):
            err(w, "entry given for a non-entry, or missing")
        if el["entry"] is not None:
            entry(w + ".entry", el["entry"])
kinds = [el.get("kind") for el in o.get("elements", [])]
if kinds[:1] != ["directory"] or "end" not in kinds or "free" not in kinds:
    err("dump", f"elements {kinds}")
o = load("import-swtpm")
check_keys("import-swtpm", o, ["image", "directory", "entries", "removed"])
entries("import-swtpm", o)
entries("import-swtpm", o, key="removed")
o = load("export-swtpm")
check_keys("export-swtpm", o, ["image", "directory", "files", "removed"])
for i, f in enumerate(o.get("files", [])):
    if check_keys(f"export-swtpm.files[{i}]", f, ["file", "entry", "size", "encryption"]):
        typ(f"export-swtpm.files[{i}]", f, "size", "int")
if not all(isinstance(x, str) for x in o.get("removed", [None])) and o.get("removed") != []:
    err("export-swtpm", "removed is not a list of file names")
for n in ("salvage", "salvage-whole"):
    o = load(n)
    check_keys(n, o, ["image", "output", "recovered_count", "lost_count", "recovered", "lost"])
    for i, e in enumerate(o.get("recovered", [])):
        entry(f"{n}.recovered[{i}]", e, extra=["new_offset", "note"])
        typ(f"{n}.recovered[{i}]", e, "new_offset", "int")
    for i, e in enumerate(o.get("lost", [])):
        entry(f"{n}.lost[{i}]", e, statuses=LOST, extra=["code", "new_offset", "note"])
        typ(f"{n}.lost[{i}]", e, "note", "str")
    if o.get("recovered_count") != len(o.get("recovered", [])) or \
       o.get("lost_count") != len(o.get("lost", [])):
        err(n, "counts differ from the arrays")
if not load("salvage").get("lost"):
    err("salvage", "a truncated image lost nothing")
if load("salvage-whole").get("lost"):
    err("salvage-whole", "an intact image lost something")

VARIABLE = ["name", "guid", "attr", "attr_names", "size", "data", "decoded", "time",
            "monotonic_count", "pubkey_index", "attributes"]
def variable(where, v):
    if not check_keys(where, v, VARIABLE):
        return
    typ(where, v, "name", "str")
    if not (isinstance(v["guid"], str) and re.match(r'^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$', v["guid"])):
        err(where, f"guid {v['guid']!r}")
    for k in ("attr", "size", "monotonic_count", "pubkey_index"):
        typ(where, v, k, "int")
    if typ(where, v, "attr_names", "list") and not all(isinstance(x, str) for x in v["attr_names"]):
        err(where, "attr_names are not strings")
    if not (isinstance(v["data"], str) and HEX.match(v["data"]) and len(v["data"]) == 2 * v["size"]):
        err(where, "data is not size octets in hexadecimal")
    if typ(where, v, "decoded", "obj", "null") and v["decoded"] is not None:
        typ(where, v["decoded"], "kind", "str")
    typ(where, v, "time", "str", "null")
    if typ(where, v, "attributes", "list"):
        for i, a in enumerate(v["attributes"]):
            attribute(f"{where}.attributes[{i}]", a)

o = load("uefi-import")
check_keys("uefi-import", o, ["image", "input", "format", "variable_count"])
if o.get("format") != "varstore" or not is_int(o.get("variable_count")) or o["variable_count"] < 1:
    err("uefi-import", f"format/variable_count {o}")
o = load("uefi-list")
check_keys("uefi-list", o, ["image", "variable_count", "variables"])
if typ("uefi-list", o, "variables", "list"):
    for i, v in enumerate(o["variables"]):
        variable(f"uefi-list.variables[{i}]", v)
    if o.get("variable_count") != len(o["variables"]):
        err("uefi-list", "variable_count differs from the array")
for n in ("uefi-get", "uefi-get-o"):
    o = load(n)
    check_keys(n, o, ["image", "output", "variable"])
    variable(n + ".variable", o.get("variable"))
    if (o.get("output") is None) != (n == "uefi-get"):
        err(n, f"output {o.get('output')!r}")
if load("uefi-get").get("variable", {}).get("decoded", {}).get("kind") != "signature_database":
    err("uefi-get", "PK is not decoded as a signature database")
for n in ("uefi-set", "uefi-rm"):
    o = load(n)
    check_keys(n, o, ["image", "variable"])
    variable(n + ".variable", o.get("variable"))
    if o.get("variable", {}).get("data") != "0500":
        err(n, "the variable is not Timeout = 5")
for n, f in (("uefi-export", "json"), ("uefi-export-fd", "varstore")):
    o = load(n)
    check_keys(n, o, ["image", "output", "format", "variable_count", "size"])
    if o.get("format") != f:
        err(n, f"format {o.get('format')!r}")
o = load("uefi-enroll")
check_keys("uefi-enroll", o, ["image", "changes"])
if typ("uefi-enroll", o, "changes", "list"):
    if not o["changes"]:
        err("uefi-enroll", "no change reported")
    for i, c in enumerate(o["changes"]):
        if check_keys(f"uefi-enroll.changes[{i}]", c, ["variable", "change"]):
            typ(f"uefi-enroll.changes[{i}]", c, "change", "str")

# Errors: nothing on standard output, one object on standard error.
ERROR = ["exit", "code", "message", "file", "entry", "offset", "errno", "hint"]
want_exit = {"err-usage": 1, "err-usage-global": 1, "err-notfound": 2, "err-missing": 2,
             "err-corrupt": 3, "err-key": 7, "err-exists": 8, "err-output": 8,
             "err-salvage": 8, "err-swtpm": 8, "err-refused": 8, "err-uefi-import": 8,
             "err-uefi-export": 8, "err-uefi-get": 2, "err-uefi-set": 3}
for n, status in want_exit.items():
    if open(os.path.join(d, n + ".out")).read():
        err(n, "a failing command printed on standard output")
    text = open(os.path.join(d, n + ".err")).read()
    try:
        o = json.loads(text)
    except ValueError as e:
        err(n, f"standard error is not one JSON document: {e}: {text!r}")
        continue
    if check_keys(n, o, ["error"]) and check_keys(n + ".error", o["error"], ERROR):
        e = o["error"]
        if e["exit"] != status:
            err(n, f"exit {e['exit']} in the object, {status} from the process")
        typ(n, e, "code", "str")
        typ(n, e, "message", "str")
        typ(n, e, "file", "str", "null")
        typ(n, e, "offset", "int", "null")
        typ(n, e, "errno", "int", "null")
        typ(n, e, "hint", "str", "null")
        if typ(n, e, "entry", "obj", "null") and e["entry"] is not None:
            check_keys(n + ".error.entry", e["entry"], ["type", "name"])
        if status in (2, 3, 7) and not e["code"].startswith("BS_E"):
            err(n, f"code {e['code']!r} is not a library code")
e = json.loads(open(os.path.join(d, "err-notfound.err")).read())["error"]
if e["entry"] != {"type": "nosuch", "name": None} or not e["file"]:
    err("err-notfound", f"does not name the file and the entry: {e}")
if json.loads(open(os.path.join(d, "err-corrupt.err")).read())["error"]["hint"] is None:
    err("err-corrupt", "a damaged image's error does not point to salvage")
for e in errors:
    print("FAIL:", e)
sys.exit(1 if errors else 0)
PY
echo "cli json: ok"
