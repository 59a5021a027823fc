#!/usr/bin/env bash
# Makes a development PKI for Baton with the openssl CLI:
#   ca.crt/ca.key          a self-signed CA (EC P-256), 10 years
#   server.crt/server.key  serverAuth, SAN DNS:localhost DNS:gateway IP:127.0.0.1 IP:::1 (+ $BATON_EXTRA_SANS)
#   client.crt/client.key  clientAuth, for mTLS
# Usage: certs/make-certs.sh [--force] [OUTDIR]     (OUTDIR defaults to certs/out/)
# Idempotent: files that exist, verify against the CA, match their key and are valid for at
# least another day are kept; a new CA re-issues both leaves. --force remakes everything.
# Concurrent runs on one OUTDIR are serialized with flock (ctest -j runs several e2e tests at once).
# These keys are for development and tests only; they are git-ignored.
set -euo pipefail

force=0
outdir=""
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h | --help)
      sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "make-certs: unknown option $arg" >&2
      exit 2
      ;;
    *) outdir="$arg" ;;
  esac
done
if [[ -z "$outdir" ]]; then
  outdir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/out"
fi
mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"

exec 9>"$outdir/.lock"
flock -w 60 9 || {
  echo "make-certs: timed out waiting for $outdir/.lock" >&2
  exit 1
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
umask 077 # keys are created owner-only; certificates are chmod'ed 644 below

server_sans="DNS:localhost,DNS:gateway,DNS:baton-gateway,IP:127.0.0.1,IP:::1"
if [[ -n "${BATON_EXTRA_SANS:-}" ]]; then
  server_sans="$server_sans,$BATON_EXTRA_SANS"
fi

# pubkey_of CERT_OR_KEY KIND: the public key in PEM, to check a certificate matches its key.
pubkey_of() {
  if [[ "$2" == cert ]]; then
    openssl x509 -in "$1" -noout -pubkey 2>/dev/null
  else
    openssl pkey -in "$1" -pubout 2>/dev/null
  fi
}

# valid NAME [CA]: NAME.crt/NAME.key exist, match, last another day and (for leaves) chain to the CA.
valid() {
  local crt="$outdir/$1.crt" key="$outdir/$1.key"
  [[ -s "$crt" && -s "$key" ]] || return 1
  openssl x509 -in "$crt" -noout -checkend 86400 >/dev/null 2>&1 || return 1
  [[ "$(pubkey_of "$crt" cert)" == "$(pubkey_of "$key" key)" ]] || return 1
  if [[ "$1" != ca ]]; then
    openssl verify -CAfile "$outdir/ca.crt" "$crt" >/dev/null 2>&1 || return 1
  fi
}

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

serial() { echo "0x$(openssl rand -hex 16)"; }

make_ca() {
  cat >"$work/ca.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
O = Baton development
CN = Baton Development CA
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF
  new_key "$work/ca.key"
  openssl req -x509 -new -config "$work/ca.cnf" -key "$work/ca.key" -sha256 -days 3650 \
    -set_serial "$(serial)" -out "$work/ca.crt"
  mv "$work/ca.key" "$outdir/ca.key"
  mv "$work/ca.crt" "$outdir/ca.crt"
  echo "make-certs: made $outdir/ca.crt"
}

# make_leaf NAME CN EKU [SANS]
make_leaf() {
  local name="$1" cn="$2" eku="$3" sans="${4:-}"
  {
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature"
    echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    if [[ -n "$sans" ]]; then echo "subjectAltName = $sans"; fi
  } >"$work/$name.ext"
  new_key "$work/$name.key"
  openssl req -new -key "$work/$name.key" -subj "/O=Baton development/CN=$cn" -out "$work/$name.csr"
  openssl x509 -req -in "$work/$name.csr" -CA "$outdir/ca.crt" -CAkey "$outdir/ca.key" \
    -set_serial "$(serial)" -sha256 -days 825 -extfile "$work/$name.ext" \
    -out "$work/$name.crt" 2>/dev/null
  mv "$work/$name.key" "$outdir/$name.key"
  mv "$work/$name.crt" "$outdir/$name.crt"
  echo "make-certs: made $outdir/$name.crt"
}

made=0
if ((force)) || ! valid ca; then
  make_ca
  made=1
fi
if ((force || made)) || ! valid server; then
  make_leaf server localhost serverAuth "$server_sans"
  made=1
fi
if ((force || made)) || ! valid client; then
  make_leaf client baton-dev-client clientAuth "DNS:baton-dev-client"
  made=1
fi
chmod 644 "$outdir"/*.crt
chmod 600 "$outdir"/*.key

for name in server client; do
  valid "$name" || {
    echo "make-certs: $name.crt does not verify against ca.crt" >&2
    exit 1
  }
done
if ((made == 0)); then
  echo "make-certs: certificates in $outdir are valid; kept (use --force to remake)"
fi
