#!/usr/bin/env bash
# scripts/gen-certs.sh DIR — a local certificate authority and certificates
# for an encrypted, mutually authenticated local cluster (issue 13):
#   DIR/ca.pem, DIR/ca-key.pem            the CA (10 years)
#   DIR/server.pem, DIR/server-key.pem    for every listener (and the processes' own
#                                         calls to each other, mutual TLS), valid for
#                                         127.0.0.1, ::1 and localhost
#   DIR/client.pem, DIR/client-key.pem    a client certificate (mutual TLS)
# With openssl (Debian's). Keys are EC P-256, readable by the owner only.
# Not for production: a real deployment brings its own CA.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: scripts/gen-certs.sh DIR" >&2
  exit 2
fi
DIR="$1"
mkdir -p "$DIR"
umask 077
cd "$DIR"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca-key.pem
openssl req -x509 -new -key ca-key.pem -sha256 -days 3650 -subj "/CN=quiver local CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem 2>/dev/null

issue() {  # issue NAME CN EXTENSIONS
  key "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 -sha256 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue server localhost "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost"
issue client quiver-client "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
rm -f ca.srl
chmod 644 ca.pem server.pem client.pem
echo "gen-certs: wrote ca.pem server.pem server-key.pem client.pem client-key.pem to $DIR"
