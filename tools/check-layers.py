#!/usr/bin/env python3
"""tools/check-layers.py BUILD_DIR [SRCDIR] - the library's layer rule, checked.

docs/ARCHITECTURE.md describes the layers.  This checks, from the objects
of a build (nm) and from the sources (#include lines):

  1. every call between the library's objects goes to the object's own
     layer or to a layer below it that the table allows (no call up, none
     sideways);
  2. no cycle between files: the graph of calls between objects, within a
     layer too, has no loop;
  3. the device layer (nvram/), the tools and the examples use the public
     API only: no symbol of the library's internal namespace (bs__*);
  4. every #include of a library file names its own layer's header or an
     allowed layer's; the device layer, the tools and the examples include
     only public headers (<blobstore/...>) and headers of their own folder.

Exit status 0 when all hold; 1 with one line per breach otherwise.
"""
import collections
import os
import re
import subprocess
import sys
import tempfile

# Bottom to top; each layer may use the ones listed (and itself).
ALLOWED = {
    "base": [],
    "storage": ["base"],
    "der": ["base"],
    "codec": ["base", "der"],
    "data": ["base", "der", "codec", "storage"],
    "dir": ["base", "storage", "der", "codec", "data"],
    "api": ["base", "storage", "der", "codec", "data", "dir"],
}
# Folders above the library: public API only.
PUBLIC_ONLY = ["nvram", "tools/blobstore", "examples/versioned", "examples/vtpm"]


def nm(path):
    """(defined, undefined) symbol sets of one object."""
    out = subprocess.run(["nm", "-P", path], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind in "TDBRCVW":
            defined.add(name)
    return defined, undefined


def layer_of_obj(rel):
    """'blobstore/dir/write.o' -> 'dir'; 'nvram/device.o' -> 'nvram'."""
    parts = rel.split("/")
    if parts[0] == "blobstore" and len(parts) == 3:
        return parts[1]
    return parts[0]


def find_cycles(edges, nodes):
    """Strongly connected components of more than one node (iterative Tarjan)."""
    index, low, onstack, stack, sccs = {}, {}, set(), [], []
    counter = [0]
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        onstack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    onstack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    advanced = True
                    break
                if w in onstack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    onstack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    sccs.append(sorted(comp))
    return sccs


def check_symbols(build, srcdir, problems):
    objdir = os.path.join(build, "obj")
    objs = {}
    for top in ("blobstore", "nvram", "tools"):
        for dirpath, _, files in os.walk(os.path.join(objdir, top)):
            for f in files:
                rel_src = os.path.relpath(os.path.join(dirpath, f[:-2] + ".c"), objdir)
                # Objects of sources that no longer exist are left-overs.
                if f.endswith(".o") and os.path.exists(os.path.join(srcdir, rel_src)):
                    path = os.path.join(dirpath, f)
                    objs[os.path.relpath(path, objdir)] = nm(path)
    if not any(k.startswith("blobstore/") for k in objs):
        problems.append("no library objects under %s: build first" % objdir)
        return
    owner = {}
    for rel, (defined, _) in objs.items():
        if rel.startswith("tools/"):
            continue
        for sym in defined:
            owner.setdefault(sym, rel)
    # The examples are built straight into programs: compile them alone.
    with tempfile.TemporaryDirectory() as tmp:
        for folder in ("examples/versioned", "examples/vtpm"):
            for f in sorted(os.listdir(os.path.join(srcdir, folder))):
                if not f.endswith(".c"):
                    continue
                out = os.path.join(tmp, f + ".o")
                cmd = ["cc", "-std=c11", "-D_GNU_SOURCE", "-DDEVICE_VERSION=3", "-c",
                       "-I" + os.path.join(srcdir, "include"), os.path.join(srcdir, folder, f),
                       "-o", out]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode:
                    problems.append("%s/%s: does not compile with the public headers alone: %s"
                                    % (folder, f, r.stderr.strip().splitlines()[:1]))
                    continue
                objs[folder + "/" + f[:-2] + ".o"] = nm(out)
    edges = collections.defaultdict(set)
    for rel, (_, undefined) in objs.items():
        mine = layer_of_obj(rel)
        public_only = any(rel.startswith(p + "/") for p in PUBLIC_ONLY)
        for sym in sorted(undefined):
            if public_only and sym.startswith("bs__"):
                problems.append("%s: uses the library's internal %s (public API only)" % (rel, sym))
            target = owner.get(sym)
            if not target or target == rel:
                continue
            if not public_only or rel.startswith("nvram/"):
                edges[rel].add(target)
            theirs = layer_of_obj(target)
            if mine in ALLOWED and theirs != mine and theirs not in ALLOWED[mine]:
                what = "up" if theirs in ALLOWED and mine in ALLOWED[theirs] else "sideways"
                if theirs not in ALLOWED:
                    what = "up"
                problems.append("%s (%s) calls %s in %s (%s): a call %s" %
                                (rel, mine, sym, target, theirs, what))
    nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})
    for comp in find_cycles(edges, nodes):
        problems.append("cycle between files: " + " -> ".join(comp))


INCLUDE = re.compile(r'^\s*#\s*include\s+([<"])([^>"]+)[>"]', re.M)


def check_includes(srcdir, problems):
    lib = os.path.join(srcdir, "blobstore")
    for layer in sorted(ALLOWED):
        for f in sorted(os.listdir(os.path.join(lib, layer))):
            if not f.endswith((".c", ".h")):
                continue
            text = open(os.path.join(lib, layer, f), encoding="utf-8").read()
            for kind, name in INCLUDE.findall(text):
                if kind == "<":
                    continue
                if "/" not in name:
                    if name != layer + ".h":
                        problems.append("blobstore/%s/%s includes \"%s\": only its layer's header "
                                        "(%s.h) or another layer's \"LAYER/LAYER.h\"" %
                                        (layer, f, name, layer))
                    continue
                other, header = name.split("/", 1)
                if header != other + ".h" or other not in ALLOWED:
                    problems.append("blobstore/%s/%s includes \"%s\": not a layer's header" %
                                    (layer, f, name))
                elif other != layer and other not in ALLOWED[layer]:
                    problems.append("blobstore/%s/%s includes \"%s\": the %s layer may not use %s" %
                                    (layer, f, name, layer, other))
    for folder in PUBLIC_ONLY:
        path = os.path.join(srcdir, folder)
        for f in sorted(os.listdir(path)):
            if not f.endswith((".c", ".h")):
                continue
            text = open(os.path.join(path, f), encoding="utf-8").read()
            for kind, name in INCLUDE.findall(text):
                if kind == '"' and ("/" in name or not os.path.exists(os.path.join(path, name))):
                    problems.append("%s/%s includes \"%s\": public headers (<blobstore/...>) and "
                                    "its own folder's only" % (folder, f, name))
                if kind == "<" and name.startswith(("api/", "dir/", "data/", "codec/", "der/",
                                                    "storage/", "base/")):
                    problems.append("%s/%s includes <%s>: a library layer's header" %
                                    (folder, f, name))


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: tools/check-layers.py BUILD_DIR [SRCDIR]", file=sys.stderr)
        return 2
    build = sys.argv[1]
    srcdir = sys.argv[2] if len(sys.argv) == 3 else \
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = []
    check_symbols(build, srcdir, problems)
    check_includes(srcdir, problems)
    for p in problems:
        print("layers: " + p)
    if not problems:
        print("layers: ok (%s)" % ", ".join(
            "%s <- %s" % (k, "+".join(v) if v else "nothing") for k, v in ALLOWED.items()))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
