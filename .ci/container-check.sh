#!/usr/bin/env bash
# What the container image relies on, checked without a container daemon: the release binary
# runs as the image's non-root uid (65532), and it trusts the servers the Debian CA bundle
# vouches for, and no others. A throwaway CA (trustme) signs a local HTTPS server's certificate;
# the binary fetches from it with a bundle that is Debian's plus that CA, and fails without it.
# Usage: .ci/container-check.sh PATH-TO-RELEASE-BINARY
set -euo pipefail
bin=$(readlink -f "$1")
work=$(mktemp -d)
chmod 0755 "$work"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
debian_bundle=/etc/ssl/certs/ca-certificates.crt
[ -s "$debian_bundle" ] || { echo "no Debian CA bundle at $debian_bundle (apt-get install ca-certificates)"; exit 1; }

python3 - "$work" <<'PY'
import sys, trustme
work = sys.argv[1]
ca = trustme.CA()
cert = ca.issue_cert("localhost", "127.0.0.1")
ca.cert_pem.write_to_path(f"{work}/test-ca.pem")
cert.private_key_and_cert_chain_pem.write_to_path(f"{work}/server.pem")
PY
cat "$debian_bundle" "$work/test-ca.pem" > "$work/bundle.pem"
mkdir -p "$work/srv/v2/organizations/users"
cp examples/telnyx-api-reference-example.json "$work/srv/v2/organizations/users/users_groups_report"
port_file="$work/port"
python3 - "$work" "$port_file" <<'PY' &
import http.server, ssl, sys, functools, os
work, port_file = sys.argv[1], sys.argv[2]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=f"{work}/srv")
httpd = http.server.HTTPServer(("127.0.0.1", 0), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(f"{work}/server.pem")
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(httpd.server_address[1]))
os.rename(port_file + ".tmp", port_file)
httpd.serve_forever()
PY
server=$!
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
port=$(cat "$port_file")

as_nonroot() {
  setpriv --reuid=65532 --regid=65532 --clear-groups env -i HOME=/nonexistent PATH=/usr/bin:/bin "$@"
}
[ "$(as_nonroot id -u)" = 65532 ]
as_nonroot "$bin" --version

# Trusted through the bundle: the fetch and the audit run, as uid 65532, writing only where
# that user may.
out="$work/out"
mkdir -p "$out" && chown 65532:65532 "$out"
as_nonroot SSL_CERT_FILE="$work/bundle.pem" TELNYX_API_KEY=KEY0test TELNYX_BASE_URL="https://localhost:$port/v2" \
  "$bin" audit --fetch --now 2026-11-29T00:00:00Z -q -f json -o "$out/findings.json"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['source']['kind']=='telnyx-api', d['source']; print('fetched over TLS as uid 65532:', d['summary']['users'], 'users')" "$out/findings.json"

# Debian's bundle alone does not vouch for the throwaway CA: the certificate is refused (exit 3).
set +e
as_nonroot SSL_CERT_FILE="$debian_bundle" TELNYX_API_KEY=KEY0test TELNYX_BASE_URL="https://localhost:$port/v2" \
  "$bin" audit --fetch --retries 0 --now 2026-11-29T00:00:00Z -q -f json -o "$out/refused.json" 2>"$work/err"
code=$?
set -e
cat "$work/err"
[ "$code" = 3 ] || { echo "expected exit 3 for an untrusted certificate, got $code"; exit 1; }
grep -qi "certificate" "$work/err" || { echo "the error does not say the certificate was refused"; exit 1; }
# A fresh machine with only the binary and the examples: the README's first audit, and the
# weekly email example (its two organizations fetched from the local server, the message
# written by a dry run), as uid 65532.
cp -r examples "$work/examples"
chown -R 65532:65532 "$work/examples"
cd "$work"
as_nonroot "$bin" audit --input examples/acme-users-groups.json --now 2026-11-29T00:00:00Z \
  --set 'external-email-domain.allowed_domains=[acme.example]' > "$work/readme-audit.txt"
tail -1 "$work/readme-audit.txt"
grep -q "^14 findings: 1 critical, 1 high, 7 medium, 4 low, 1 info" "$work/readme-audit.txt"
set +e
as_nonroot SSL_CERT_FILE="$work/bundle.pem" TELNYX_API_KEY_ACME_PROD=KEY0prod TELNYX_API_KEY_ACME_STAGING=KEY0staging ORGAUDIT_SMTP_PASSWORD=unused-by-a-dry-run \
  "$bin" audit --config examples/orgaudit.yaml --base-url "https://localhost:$port/v2" \
  --now 2026-11-29T00:00:00Z --email-dry-run "$work/examples/review.eml" -q -o /dev/null
code=$?
set -e
[ "$code" = 0 ] || [ "$code" = 1 ] || { echo "the weekly email example failed with exit $code"; exit 1; }
grep -q "^Subject: orgaudit: " "$work/examples/review.eml"
ls "$work/examples/out"
echo "the release binary runs as uid 65532, trusts exactly the CA bundle it is given, and runs the README's audit and the weekly email example"
