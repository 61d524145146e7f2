#!/usr/bin/env bash
# tests/integration/test_cli_man.sh - blobstore(1) and --help agree: every
# command of 'blobstore --help' has a section in docs/blobstore.1 and the
# reverse; in each section the options (.TP items) are exactly those that
# 'blobstore CMD --help' lists; the global options likewise; the exit
# statuses 0 to 8 are in both; and the page formats without a warning.  The
# uefi command's options are checked against its UEFI VARIABLES section:
# the options of its usage lines are exactly that section's .TP items.
# shellcheck source=cli_common.sh
. "$(dirname "$0")/cli_common.sh"

man=${SRCDIR:-$(dirname "$0")/../..}/docs/blobstore.1
bs --help >"$tmp/help"
for c in $(sed -n '/^Commands:/,/^$/p' "$tmp/help" | awk 'NF > 1 {print $1}'); do
	bs "$c" --help >"$tmp/help.$c" || fail "$c --help"
done

python3 - "$man" "$tmp" <<'PY' || fail "blobstore.1 and --help disagree"
import os, re, sys
man_path, tmp = sys.argv[1], sys.argv[2]
man = open(man_path).read().split('\n')
general = open(os.path.join(tmp, 'help')).read().split('\n')

def help_options(lines):
    """Options an option list names at the start of its lines."""
    out = set()
    for l in lines:
        m = re.match(r'^  (?:-[a-zA-Z], )?--([a-z0-9][a-z0-9-]*)', l)
        if m:
            out.add(m.group(1))
    return out

def man_options(lines):
    """Options the .TP items of a man page part define."""
    out = set()
    for i, l in enumerate(lines):
        if l.strip() == '.TP' and i + 1 < len(lines):
            for name in re.findall(r'\\-\\-([a-z0-9][a-z0-9\\-]*)', lines[i + 1]):
                out.add(name.replace('\\-', '-'))
    return out

commands = []
in_cmds = False
for l in general:
    if l.startswith('Commands:'):
        in_cmds = True
        continue
    if in_cmds:
        if not l.strip():
            break
        commands.append(l.split()[0])

# The man page's command sections.
sections, current = {}, None
for l in man:
    m = re.match(r'^\.\\" command: (\S+)$', l)
    if m:
        current = m.group(1)
        sections[current] = []
        continue
    if l.startswith('.SH') or l.startswith('.\\" uefi:'):
        current = None
    if current:
        sections[current].append(l)

errors = []
if not any(l.startswith('.SS "uefi') for l in man):
    errors.append('blobstore.1 has no uefi section')
for c in commands:
    if c == 'uefi':
        continue
    if c not in sections:
        errors.append(f'blobstore.1 has no section for {c}')
        continue
    h = help_options(open(os.path.join(tmp, 'help.' + c)).read().split('\n'))
    m = man_options(sections[c])
    for o in sorted(h - m):
        errors.append(f'{c}: --{o} is in --help but not in blobstore.1')
    for o in sorted(m - h):
        errors.append(f'{c}: --{o} is in blobstore.1 but not in --help')
for c in sections:
    if c not in commands:
        errors.append(f'blobstore.1 describes {c}, which --help does not list')

# Global options.
glob = []
in_glob = False
for l in general:
    if l.startswith('Global options'):
        in_glob = True
        continue
    if in_glob:
        if not l.strip():
            break
        glob.append(l)
gman, in_g = [], False
for l in man:
    if l == '.SH GLOBAL OPTIONS':
        in_g = True
        continue
    if in_g and l.startswith('.SH'):
        break
    if in_g:
        gman.append(l)
h, m = help_options(glob), man_options(gman) - {'help', 'version'}
for o in sorted(h - m):
    errors.append(f'global --{o} is in --help but not in blobstore.1')
for o in sorted(m - h):
    errors.append(f'global --{o} is in blobstore.1 but not in --help')

# uefi: its usage lines (the first lines of 'uefi --help', up to the first
# empty one) against the .TP items of the section UEFI VARIABLES.
if '.SH UEFI VARIABLES' not in man:
    errors.append('blobstore.1 has no section UEFI VARIABLES')
else:
    a = man.index('.SH UEFI VARIABLES')
    b = next((i for i in range(a + 1, len(man)) if man[i].startswith('.SH')), len(man))
    m = {re.sub(r'\\f.*$', '', o) for o in man_options(man[a:b])}
    usage = []
    for l in open(os.path.join(tmp, 'help.uefi')).read().split('\n'):
        if not l.strip():
            break
        usage.append(l)
    h = set(re.findall(r'(?<![\w-])--([a-z0-9][a-z0-9-]*)', '\n'.join(usage)))
    for o in sorted(h - m):
        errors.append(f'uefi: --{o} is in --help but not in UEFI VARIABLES')
    for o in sorted(m - h):
        errors.append(f'uefi: --{o} is in UEFI VARIABLES but not in --help')

# Exit statuses.
text = '\n'.join(man)
ex = text[text.index('.SH EXIT STATUS'):]
for n in range(9):
    if f'.B {n}\n' not in ex:
        errors.append(f'blobstore.1 lacks exit status {n}')
    if not any(re.match(rf'^  {n}  ', l) for l in general):
        errors.append(f'--help lacks exit status {n}')
for e in errors:
    print('FAIL:', e)
sys.exit(1 if errors else 0)
PY

# What the page must explain, by name.
for text in "encrypt\\-init" "rekey" "salvage" "\\-\\-encrypt" "\\-\\-plain" "\\-\\-cipher" \
	"\\-\\-key\\-file" "\\-\\-passphrase\\-file" "\\-\\-passphrase\\-fd" "\\-\\-force" \
	"\\-\\-wait" "Nothing is destroyed without" "JSON OUTPUT" "ATTRIBUTE VALUES"; do
	grep -qF -- "$text" "$man" || fail "blobstore.1 does not mention $text"
done
if command -v groff >/dev/null; then
	groff -man -Tutf8 -ww -z "$man" >"$tmp/groff" 2>&1 || fail "groff cannot format blobstore.1"
	[ ! -s "$tmp/groff" ] || { cat "$tmp/groff"; fail "groff warns about blobstore.1"; }
fi
echo "cli man page: ok"
