#!/usr/bin/env bash
# Make a throw-away certificate authority and certificates for kop's TLS listeners (openssl).
#
#   scripts/tls.sh [DIR]     (default .run/tls; does nothing when DIR/ca.pem exists)
#
# DIR/ca.pem, ca.key         the CA (clients trust ca.pem)
# DIR/server.pem, server.key kop's certificate for 127.0.0.1 and localhost, signed by the CA
# DIR/client.pem, client.key a client certificate (CN=kop-test-client) for mTLS, signed by the CA
# Valid for 30 days; RSA 2048; for local demos and tests, not for production.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$here/.run/tls}
[ -s "$dir/ca.pem" ] && [ -s "$dir/client.key" ] && exit 0
mkdir -p "$dir"; chmod 700 "$dir"; cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=kop demo CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout ca.key -out ca.pem 2>/dev/null
issue() {  # name subject extensions
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile "$1.ext" \
    -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue server "/CN=kop" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
issue client "/CN=kop-test-client/O=acme" "extendedKeyUsage=clientAuth"
chmod 600 ./*.key
echo "[tls.sh] CA and certificates in $dir" >&2
