#!/usr/bin/python3
"""check_symbols.py LIBRARY HEADER_DIR: libbaton exports its public API only.

Reads the symbol tables of the archive's objects (readelf) and fails when a
defined global symbol
  - does not start with bt_ (every name of the runtime carries its prefix),
  - starts with bt__ (internal) but is not hidden,
  - starts with bt_ but is not declared in HEADER_DIR (include/baton), or is
    declared there and is hidden (a public function the library would not
    export from a shared build).
Compiler-generated names (a leading "__", e.g. sanitizer instrumentation)
are not ours and are skipped."""

import re
import subprocess
import sys
from pathlib import Path


def declared_names(header_dir):
    names = set()
    for h in Path(header_dir).glob("*.h"):
        names.update(re.findall(r"\b(bt_[a-z0-9_]+)\s*\(", h.read_text()))
    return names


def defined_globals(library):
    out = subprocess.run(["readelf", "-sW", library], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        f = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(f) == 8 and f[0].endswith(":") and f[4] in ("GLOBAL", "WEAK") and f[6] != "UND":
            yield f[7], f[5]


def main(library, header_dir):
    public = declared_names(header_dir)
    problems, n_public, n_internal = [], 0, 0
    for name, vis in sorted(set(defined_globals(library))):
        if name.startswith("__"):
            continue
        if name.startswith("bt__"):
            n_internal += 1
            if vis != "HIDDEN":
                problems.append(f"{name}: internal but {vis}")
        elif name.startswith("bt_"):
            n_public += 1
            if name not in public:
                problems.append(f"{name}: bt_ but not declared in {header_dir} (internal: name it bt__)")
            elif vis != "DEFAULT":
                problems.append(f"{name}: public but {vis}")
        else:
            problems.append(f"{name}: no bt_ prefix")
    for p in problems:
        print(p)
    print(f"{n_public} public symbols, {n_internal} internal (hidden), {len(problems)} problems")
    return 1 if problems or n_public == 0 else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
