#!/usr/bin/python3
"""A damaged SQLite saga log: a clear refusal naming the file, or a safe recovery; never a crash.

First a real log is made: baton-gateway on saga.db over the travel backends
(examples/travel) books a trip that completes, one whose payment is declined
(compensated), and one held at the payment (applied, answer pending) when
the gateway is SIGKILLed: an unfinished saga. Then the log is damaged and
the gateway started on it (and `baton-gateway sagas` run on it):

  garbage_header  the first 100 bytes (SQLite's header) overwritten
  garbage_pages   every page after the first overwritten with random bytes
  truncated       the file cut in the middle of a page
  empty           the file cut to 0 bytes
  torn_wal        the WAL kept (not checkpointed), with half a frame of
                  garbage appended: the torn last write of a crash. This
                  one must recover: the unfinished saga ends COMPENSATED,
                  its payment refunded and reservation cancelled once
  cut_wal         the WAL cut in the middle of its last frame: the gateway
                  must start, and leave no saga RUNNING or COMPENSATING

For the damaged main file either outcome passes: the gateway exits non-zero
within 30 s, not by a signal, with no sanitizer report, its error naming the
file; or it starts, every saga it lists ends, a new booking succeeds and it
stops cleanly. `sagas` likewise: listing, or a non-zero exit naming the file.
A gateway that starts on a log that `sagas` cannot read fails the case.

  saga_log_damage.py --case=NAME --gateway=PATH --travel-bin-dir=DIR
                     [--descriptors=travel_proto.pb]
"""

import os
import random
import sqlite3
import sys
import time
from pathlib import Path

import harness
import gateway_env as ge
import saga_env as se
from saga_env import op_names, find_op, expect_error

PAGE = 4096


def make_log(env, check, checkpoint):
    """A real saga log with a completed, a compensated and an unfinished saga; returns the unfinished one's id."""
    gw = env.gateway("maker")
    gw.book()
    err = ge.rpc_error(lambda: gw.book(card="tok_declined"))
    expect_error(check, err, "FAILED_PRECONDITION", "declined card")
    env.res.wait(lambda s: "cancel" in op_names(s), 10)
    se.wait_until(lambda: len(gw.sagas("--state", "COMPENSATED").ids()) == 1, 10, interval=0.2)
    env.pay.configure(delay_ms=60000, delay_methods=["Pay"], apply_before_delay=True)
    fut = gw.book_async(timeout=90)
    env.pay.wait(lambda s: op_names(s).count("pay") >= 2, 10)
    saga = se.saga_ids(env.pay.get(), "pay")[-1]
    lst = gw.sagas()
    check(lst.state(saga) == "RUNNING", f"the held saga is RUNNING in the log ({lst.describe(saga)})")
    gw.kill()
    ge.rpc_error(fut.result)
    env.pay.configure()
    db = env.sqlite_log()
    wal = Path(str(db) + "-wal")
    harness.log(f"  log: {db} {db.stat().st_size} bytes, WAL {wal.stat().st_size if wal.exists() else '-'} bytes")
    if checkpoint:
        # Everything into the main file, so damaging it damages the sagas.
        con = sqlite3.connect(str(db))
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        for suffix in ("-wal", "-shm"):
            p = Path(str(db) + suffix)
            if p.exists():
                p.unlink()
        harness.log(f"  checkpointed: {db} {db.stat().st_size} bytes")
    return saga


def all_ended(gw):
    """The SagaList when `sagas` works and lists no saga RUNNING or COMPENSATING, else None."""
    lst = gw.sagas()
    if lst.rc != 0 or [k for k, v in lst.sagas.items() if v["state"] in ("RUNNING", "COMPENSATING")]:
        return None
    return lst


def refused_or_recovered(env, check, gw, db, what):
    """Starts gw on the damaged log and checks it either refuses clearly or recovers safely."""
    proc, rc = gw.start_expecting_failure(timeout=30)
    if rc is None and gw.proc is proc:
        harness.log(f"  {what}: the gateway started on the damaged log; checking it recovered safely")
        lst = se.wait_until(lambda: all_ended(gw), 20, interval=0.3)
        if not lst:
            last = gw.sagas()
            check.fail(f"{what}: the gateway runs on a log that `sagas` cannot read or that keeps unfinished "
                       f"sagas (exit {last.rc}, {[(k, v['state']) for k, v in last.sagas.items()]}, "
                       f"{last.err.strip()!r})")
        err = ge.rpc_error(lambda: gw.book())
        check(err is None, f"{what}: a booking on the recovered log succeeds ({ge.describe_error(err)})")
        return "recovered"
    out = proc.output()
    if rc is None:
        check.fail(f"{what}: the gateway neither became ready nor exited within 30 s")
        return "hung"
    check(rc > 0, f"{what}: the gateway refused with a non-zero exit status, not a signal (status {rc})")
    check(str(db) in out, f"{what}: its error names the file {db}")
    check(not proc.sanitizer_problems(), f"{what}: no sanitizer report ({proc.sanitizer_problems()})")
    harness.log(f"  {what}: refused to start (exit {rc})")
    return "refused"


def sagas_on_damaged(env, check, gw, db, what):
    lst = gw.sagas()
    if lst.rc != 0:
        check(str(db) in lst.err, f"{what}: `sagas` fails naming the file ({lst.err.strip()!r})")
    return lst


def damage_case(mutate, name):
    def case(env, check):
        make_log(env, check, checkpoint=True)
        db = env.sqlite_log()
        mutate(db)
        harness.log(f"  damaged ({name}): {db} now {db.stat().st_size} bytes")
        gw = env.gateway("damaged", start=False)
        sagas_on_damaged(env, check, gw, db, name)
        refused_or_recovered(env, check, gw, db, name)
    return case


def garbage_header(db):
    rnd = random.Random(1)
    with open(db, "r+b") as f:
        f.write(bytes(rnd.randrange(256) for _ in range(100)))


def garbage_pages(db):
    rnd = random.Random(2)
    size = db.stat().st_size
    with open(db, "r+b") as f:
        f.seek(PAGE)
        f.write(bytes(rnd.randrange(256) for _ in range(max(size - PAGE, PAGE))))


def truncated(db):
    size = db.stat().st_size
    os.truncate(db, max(size // 2 - PAGE // 2, PAGE + 100) if size > 2 * PAGE else size - 100)


def empty(db):
    os.truncate(db, 0)


def case_torn_wal(env, check):
    saga = make_log(env, check, checkpoint=False)
    db = env.sqlite_log()
    wal = Path(str(db) + "-wal")
    check(wal.exists() and wal.stat().st_size > 32, f"the killed gateway left a WAL ({wal})")
    st = env.states()
    res_key = find_op(st["reservations"], "create", saga).key
    pay_key = find_op(st["payments"], "pay", saga).key
    # Half a frame (24-byte header + page) of garbage: the write the crash tore.
    rnd = random.Random(3)
    with open(wal, "ab") as f:
        f.write(bytes(rnd.randrange(256) for _ in range((24 + PAGE) // 2)))
    gw = env.gateway("after-crash", start=False)
    proc, rc = gw.start_expecting_failure(timeout=30)
    check(rc is None and gw.proc is proc, f"a torn last write is tolerated: the gateway starts (exit {rc})")
    if gw.proc is not proc:
        return
    se.check_refund_then_cancel(check, env, saga, pay_key, res_key, "torn WAL")
    se.check_log(check, gw, saga, "COMPENSATED", {"reserve": "COMPENSATED", "pay": "COMPENSATED"}, "torn WAL")
    lst = gw.sagas()
    states = sorted(v["state"] for v in lst.sagas.values())
    check(states == ["COMPENSATED", "COMPENSATED", "COMPLETED"],
          f"the log kept all three sagas ({states}), want COMPLETED and two COMPENSATED")
    err = ge.rpc_error(lambda: gw.book())
    check(err is None, f"a booking after the recovery succeeds ({ge.describe_error(err)})")


def case_cut_wal(env, check):
    saga = make_log(env, check, checkpoint=False)
    db = env.sqlite_log()
    wal = Path(str(db) + "-wal")
    size = wal.stat().st_size if wal.exists() else 0
    check(size > 32 + 24 + PAGE, f"the killed gateway left a WAL of at least one frame ({size} bytes)")
    os.truncate(wal, size - (24 + PAGE) // 2)
    gw = env.gateway("after-crash", start=False)
    proc, rc = gw.start_expecting_failure(timeout=30)
    check(rc is None and gw.proc is proc, f"a cut last frame is tolerated: the gateway starts (exit {rc})")
    if gw.proc is not proc:
        return
    lst = se.wait_until(lambda: all_ended(gw), 20, interval=0.3)
    check(bool(lst), "every saga in the log ends (none RUNNING or COMPENSATING)")
    time.sleep(0.5)
    st = env.states()
    for name, s in st.items():
        for op in ("cancel", "refund"):
            n = op_names(s, saga).count(op)
            check(n <= 1, f"{name}: {op} applied at most once ({n})")
    err = ge.rpc_error(lambda: gw.book())
    check(err is None, f"a booking after the recovery succeeds ({ge.describe_error(err)})")


CASES = {
    "garbage_header": (damage_case(garbage_header, "garbage header"), {}),
    "garbage_pages": (damage_case(garbage_pages, "garbage pages"), {}),
    "truncated": (damage_case(truncated, "truncated"), {}),
    "empty": (damage_case(empty, "empty file"), {}),
    "torn_wal": (case_torn_wal, {}),
    "cut_wal": (case_cut_wal, {}),
}

if __name__ == "__main__":
    sys.exit(se.run_main(__doc__, CASES, sys.argv[1:]))
