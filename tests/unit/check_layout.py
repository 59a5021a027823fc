#!/usr/bin/python3
"""check_layout.py ARCHIVE GATEWAY_DIR: the gateway's layering holds.

  - No cycles between files: an edge a -> b when a's object file uses a
    symbol b's defines (readelf over the archive); any cycle fails.
  - Names say where they live: every global a file defines starts with
    gw_<file>_ (gw_<file> for a file's own type-named entry points), main.c
    aside.
  - Folders keep their privates: a file includes, from another folder, only
    that folder's contract header (<folder>/<folder>.h); only main.c
    includes gateway.h."""

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path


def symbols(archive):
    """{object stem: (defined globals, undefined names)}."""
    out = subprocess.run(["readelf", "-sW", archive], check=True, capture_output=True,
                         text=True).stdout
    objs, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"^File: .*\((.+)\.c\.o\)$", line)
        if m:
            cur = objs.setdefault(m.group(1), (set(), set()))
            continue
        f = line.split()
        if cur is None or len(f) != 8 or not f[0].endswith(":"):
            continue
        if f[6] == "UND":
            cur[1].add(f[7])
        elif f[4] in ("GLOBAL", "WEAK"):
            cur[0].add(f[7])
    return objs


def find_cycle(edges):
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def main(archive, gateway_dir):
    problems = []
    objs = symbols(archive)
    owner = {s: o for o, (defs, _) in objs.items() for s in defs}
    edges = defaultdict(set)
    for o, (defs, undefs) in objs.items():
        edges[o]
        for u in undefs:
            if u in owner and owner[u] != o:
                edges[o].add(owner[u])
        for d in defs:
            if not d.startswith(f"gw_{o}_") and d != f"gw_{o}":
                problems.append(f"{o}.c defines {d}: not named gw_{o}_...")
    cycle = find_cycle(edges)
    if cycle:
        problems.append("cycle between files: " + " -> ".join(f"{c}.c" for c in cycle))
    root = Path(gateway_dir)
    for src in sorted(root.rglob("*.[ch]")):
        rel = src.relative_to(root)
        folder = rel.parts[0] if len(rel.parts) > 1 else ""
        for inc in re.findall(r'^#include "([^"]+)"', src.read_text(), re.M):
            parts = inc.split("/")
            if inc == "gateway.h" and rel.name not in ("main.c", "gateway.c"):
                problems.append(f"{rel} includes gateway.h (only main.c may)")
            elif len(parts) == 2 and parts[0] != folder and parts[1] != f"{parts[0]}.h":
                problems.append(f"{rel} includes {inc}, private to {parts[0]}/")
    for p in problems:
        print(p)
    print(f"{len(objs)} files, {sum(len(e) for e in edges.values())} edges, {len(problems)} problems")
    return 1 if problems or not objs else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
