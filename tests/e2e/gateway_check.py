#!/usr/bin/python3
"""`baton-gateway --check` against one fixture of gateway/check/.

A fixture is a config template (the descriptor set and certificate paths are
filled in; lines are unchanged). Each line that is wrong carries a trailing
comment "# ERROR: <regex>". With no such line the config is valid: --check
must exit 0 and say it is valid. Otherwise it must exit non-zero (not crash),
print every line of its output in the form "file:line: message" (apart from
its closing count), and for every marked line print "<file>:<line>: " with a
message matching the regex. Errors beyond the marked ones are allowed (and
shown); a sanitizer report anywhere fails the case.

  gateway_check.py --case=FIXTURE --gateway=PATH [--descriptors=shop_proto.pb]
"""

import re
import sys

import harness
import gateway_env as ge

CHECK_DIR = ge.GW_DIR / "check"
MARKER = re.compile(r"\s#\s*ERROR:\s*(.+?)\s*$")
SUMMARY = re.compile(r"^baton-gateway: \d+ errors? in ")


def expectations(path):
    """[(line number, regex)] from the fixture's markers; full-line comments are prose."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        m = MARKER.search(line)
        if m:
            out.append((n, m.group(1)))
    return out


def main(argv):
    cases = [p.stem for p in CHECK_DIR.glob("*.yaml")]
    ap = ge.arg_parser(__doc__, cases)
    args = ap.parse_args(argv)
    harness.hard_timeout(args.timeout)
    work = ge.tmpdir()
    fixture = CHECK_DIR / f"{args.case}.yaml"
    # Only the fixtures naming certificates need the dev PKI made.
    certs = harness.ensure_certs(args.certs_dir).dir if "${certs}" in fixture.read_text() else "/nonexistent"
    descriptors = ge.shop_descriptors(args, work)
    cfg = ge.render(f"check/{args.case}.yaml", work, descriptors=descriptors, certs=certs)
    want = expectations(fixture)
    check = ge.Check()

    p = harness.Process("check", [args.gateway, "--check", cfg])
    rc = p.wait_exit(30)
    out = p.output().splitlines()
    for problem in p.sanitizer_problems():
        check.fail(problem)
    if rc is None:
        check.fail("--check still running after 30 s")
    elif not want:
        check(rc == 0, f"a valid config: exit status 0 (got {rc})")
        check(any(f"{cfg} is valid" in l for l in out), f"it says '{cfg} is valid ...'")
    else:
        check(0 < rc < 128, f"an invalid config: a non-zero exit status, not a crash (got {rc})")
        prefix = re.compile(rf"^{re.escape(str(cfg))}:(\d+): (.*)$")
        errors = []
        for line in out:
            m = prefix.match(line)
            if m:
                errors.append((int(m.group(1)), m.group(2)))
            elif not SUMMARY.match(line):
                check.fail(f"an output line not of the form 'file:line: message': {line!r}")
        for n, rx in want:
            hits = [msg for ln, msg in errors if ln == n]
            check(any(re.search(rx, msg) for msg in hits),
                  f"line {n} reported, matching /{rx}/ (at that line: {hits or 'nothing'})")
        extra = [(ln, msg) for ln, msg in errors if ln not in {n for n, _ in want}]
        for ln, msg in extra:
            harness.log(f"  note: also reported: line {ln}: {msg}")
    return check.finish(f"gateway --check {args.case}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
