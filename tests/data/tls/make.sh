#!/bin/sh
# Makes the test PKI of tests/integration/sse_tls.py: a CA (ca.pem) and a
# server certificate for IP 127.0.0.1 signed by it (server.pem, server.key),
# EC P-256, valid 2020-01-01 to 2120-01-01 (so a test machine's clock, right
# or a bit off, is inside). Test material only: the CA's key is thrown away.
#   sh tests/data/tls/make.sh      (needs the openssl command)
set -eu
cd "$(dirname "$0")"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir "$t/certs"
: >"$t/index.txt"
cat >"$t/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
dir = $t
database = $t/index.txt
new_certs_dir = $t/certs
serial = $t/serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
authorityKeyIdentifier = keyid
CNF
echo 01 >"$t/serial"
openssl ecparam -name prime256v1 -genkey -noout -out "$t/ca.key"
openssl req -new -key "$t/ca.key" -subj "/CN=mbta-stream test CA" -out "$t/ca.csr"
openssl ca -batch -config "$t/ca.cnf" -selfsign -keyfile "$t/ca.key" -extensions v3_ca \
	-startdate 20200101000000Z -enddate 21200101000000Z -in "$t/ca.csr" -out "$t/ca.crt" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out server.key
openssl req -new -key server.key -subj "/CN=127.0.0.1" -out "$t/server.csr"
openssl ca -batch -config "$t/ca.cnf" -cert "$t/ca.crt" -keyfile "$t/ca.key" -extensions v3_server \
	-startdate 20200101000000Z -enddate 21200101000000Z -in "$t/server.csr" -out "$t/server.crt" 2>/dev/null
openssl x509 -in "$t/ca.crt" -out ca.pem
openssl x509 -in "$t/server.crt" -out server.pem
