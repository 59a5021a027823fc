#!/usr/bin/env bash
# pg.sh: a throwaway PostgreSQL cluster for the tests, from Debian's
# postgresql package (initdb and pg_ctl in /usr/lib/postgresql/N/bin).
#
#   pg.sh run [--] CMD ARGS...  starts a cluster, runs CMD with BATON_TEST_PG
#                               set to its connection string, stops it and
#                               removes it (also when CMD fails); exits with
#                               CMD's status.
#   pg.sh start DIR             starts a cluster in DIR (created, or an
#                               empty directory) and prints its connection
#                               string.
#   pg.sh stop DIR              stops that cluster and removes DIR.
#
# The server listens only on a unix socket inside DIR (no TCP port, so
# clusters never collide), trusts local connections, and runs as the
# invoking user, or as "postgres" (else "nobody") under root, since
# PostgreSQL refuses to run as root. Durability is off (fsync=off): these
# clusters test behaviour, not disks. If this script is killed (a CTest
# timeout), a detached watchdog stops the cluster within a second or two.
# PG_BINDIR overrides where initdb and pg_ctl are found; under root, run
# puts the cluster in PG_TMPDIR (default /tmp), elsewhere in TMPDIR.
set -euo pipefail

die() {
  echo "pg.sh: $*" >&2
  exit 1
}

find_bindir() {
  if [[ -n "${PG_BINDIR:-}" ]]; then
    echo "$PG_BINDIR"
    return 0
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -n "$d" && -x "$d/initdb" ]] ||
    die "PostgreSQL server binaries not found (apt-get install postgresql; see scripts/install-deps.sh)"
  echo "$d"
}

# Runs "$@" as the cluster's user.
as_user=()
pick_user() {
  if ((EUID != 0)); then
    as_user=()
    return 0
  fi
  local u
  for u in postgres nobody; do
    if id -u "$u" >/dev/null 2>&1; then
      as_user=(runuser -u "$u" --)
      cluster_user=$u
      return 0
    fi
  done
  die "running as root and neither user postgres nor nobody exists"
}

conninfo() {
  echo "host=$1 port=5432 user=postgres dbname=postgres"
}

start_cluster() {
  local dir=$1 bindir
  bindir=$(find_bindir)
  pick_user
  if [[ -e "$dir" ]]; then
    [[ -d "$dir" && -z "$(ls -A "$dir")" ]] || die "$dir exists and is not an empty directory"
    chmod 700 "$dir"
  else
    mkdir -m 700 "$dir"
  fi
  if ((EUID == 0)); then
    chown "$cluster_user" "$dir"
    "${as_user[@]}" test -w "$dir" ||
      die "user $cluster_user cannot reach $dir (set TMPDIR to a directory it can reach)"
  fi
  # -N: no fsync of the new files (seconds saved); -U: the superuser's name
  # is "postgres" whoever runs it.
  if ! "${as_user[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust \
    -N -E UTF8 --locale=C >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    die "initdb failed"
  fi
  if ! "${as_user[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-c listen_addresses='' -k $dir -p 5432 -c fsync=off -c full_page_writes=off -c max_connections=50" \
    start >/dev/null; then
    cat "$dir/server.log" >&2 || true
    rm -rf "$dir"
    die "the server did not start"
  fi
  conninfo "$dir"
}

stop_cluster() {
  local dir=$1 bindir
  [[ -d "$dir" ]] || return 0
  bindir=$(find_bindir)
  pick_user
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    "${as_user[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

# Stops the cluster in $2 once process $1 is gone, detached from both (a
# double fork reparents it to init) so killing $1's process tree spares it.
start_watchdog() {
  local pid=$1 dir=$2
  (
    setsid bash -c '
      while kill -0 "$1" 2>/dev/null; do sleep 1; done
      exec bash "$2" stop "$3"' watchdog "$pid" "${BASH_SOURCE[0]}" "$dir" \
      </dev/null >/dev/null 2>&1 &
  )
}

cmd=${1:-}
shift || true
case "$cmd" in
start)
  [[ $# -eq 1 ]] || die "usage: pg.sh start DIR"
  start_cluster "$1"
  ;;
stop)
  [[ $# -eq 1 ]] || die "usage: pg.sh stop DIR"
  stop_cluster "$1"
  ;;
run)
  [[ "${1:-}" != -- ]] || shift
  [[ $# -ge 1 ]] || die "usage: pg.sh run [--] CMD ARGS..."
  # Under root the server runs as another user: /tmp is one it can reach.
  if ((EUID == 0)); then base=${PG_TMPDIR:-/tmp}; else base=${TMPDIR:-/tmp}; fi
  dir=$(mktemp -d "$base/baton-pg.XXXXXX")
  trap 'stop_cluster "$dir"' EXIT
  trap 'exit 143' INT TERM
  start_watchdog $$ "$dir"
  BATON_TEST_PG=$(start_cluster "$dir")
  export BATON_TEST_PG
  # Not exec: the EXIT trap must run after CMD. In the background, because
  # bash runs a signal's trap only once a foreground child has ended.
  "$@" &
  child=$!
  trap 'kill -TERM "$child" 2>/dev/null; exit 143' INT TERM
  set +e
  wait "$child"
  status=$?
  set -e
  exit "$status"
  ;;
*)
  die "usage: pg.sh run [--] CMD ARGS... | start DIR | stop DIR"
  ;;
esac
