#!/usr/bin/env bash
# A Pulsar standalone with token authentication and authorization on, for `make run-secure` and the
# security tests; it runs next to the plain one (other ports, other run dir).
#
#   scripts/pulsar-secure.sh start   create the signing key and tokens (once), start, provision tenants
#   scripts/pulsar-secure.sh stop | status | wait
#   scripts/pulsar-secure.sh env     print the KOP_* settings of a kop that uses it (as the superuser)
#
# What it sets up:
#   - a secret key (HS256) and tokens signed with it, made by Pulsar's own `bin/pulsar tokens`:
#     $KOP_TOKENS_DIR/admin.jwt (subject "admin", a superuser: kop's own client and Pulsar's admin
#     API), acme.jwt and globex.jwt (subjects "acme", "globex");
#   - tenants acme and globex, each administered by its own role, with namespace <tenant>/default on
#     which that role may produce and consume (a Kafka client authenticating as "acme" lands there);
#     the kop system namespace public/__kop (superuser only).
#
# Environment: KOP_RUN_DIR (default .run/pulsar-secure), KOP_TOKENS_DIR (default .run/tokens),
# KOP_SECURE_BROKER_PORT (6660), KOP_SECURE_WEB_PORT (8090), and what scripts/pulsar.sh reads.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export KOP_RUN_DIR=${KOP_RUN_DIR:-$here/.run/pulsar-secure}
tokens=${KOP_TOKENS_DIR:-$here/.run/tokens}
broker_port=${KOP_SECURE_BROKER_PORT:-6660}
web_port=${KOP_SECURE_WEB_PORT:-8090}
admin_url="http://127.0.0.1:$web_port"
export KOP_PULSAR_ADMIN_URL=$admin_url
export KOP_PULSAR_ADMIN_TOKEN_FILE=$tokens/admin.jwt

log() { printf '[pulsar-secure.sh] %s\n' "$*" >&2; }

make_tokens() {
  local home; home=$("$here/scripts/pulsar.sh" home)
  mkdir -p "$tokens"; chmod 700 "$tokens"
  if [ ! -s "$tokens/secret.key" ]; then
    log "creating the token signing key and tokens in $tokens"
    "$home/bin/pulsar" tokens create-secret-key --output "$tokens/secret.key" >/dev/null
    chmod 600 "$tokens/secret.key"
    rm -f "$tokens"/*.jwt
  fi
  local subject
  for subject in admin acme globex; do
    if [ ! -s "$tokens/$subject.jwt" ]; then
      "$home/bin/pulsar" tokens create --secret-key "file://$tokens/secret.key" --subject "$subject" \
        > "$tokens/$subject.jwt"
      chmod 600 "$tokens/$subject.jwt"
    fi
  done
}

call() {  # method path [json]
  local args=(-sS -m 30 -X "$1" -H "Authorization: Bearer $(cat "$tokens/admin.jwt")" "$admin_url/admin/v2/$2")
  if [ $# -ge 3 ]; then args+=(-H "Content-Type: application/json" -d "$3"); fi
  curl "${args[@]}" -o /dev/null -w '%{http_code}' || true
}

provision() {
  local tenant code
  for tenant in acme globex; do
    code=$(call PUT "tenants/$tenant" "{\"adminRoles\":[\"$tenant\"],\"allowedClusters\":[\"standalone\"]}")
    [[ $code == 204 || $code == 409 ]] || { log "creating tenant $tenant: HTTP $code"; exit 1; }
    code=$(call PUT "namespaces/$tenant/default")
    [[ $code == 204 || $code == 409 ]] || { log "creating namespace $tenant/default: HTTP $code"; exit 1; }
    code=$(call POST "namespaces/$tenant/default/permissions/$tenant" '["produce","consume"]')
    [[ $code == 204 ]] || { log "granting $tenant on $tenant/default: HTTP $code"; exit 1; }
  done
  code=$(call PUT "namespaces/public/__kop")
  [[ $code == 204 || $code == 409 ]] || { log "creating namespace public/__kop: HTTP $code"; exit 1; }
  log "tenants acme and globex (namespace <tenant>/default) ready; tokens in $tokens"
}

case "${1:-}" in
  start)
    "$here/scripts/pulsar.sh" fetch
    make_tokens
    export PULSAR_EXTRA_CONF="brokerServicePort=$broker_port
webServicePort=$web_port
authenticationEnabled=true
authenticationProviders=org.apache.pulsar.broker.authentication.AuthenticationProviderToken
tokenSecretKey=file://$tokens/secret.key
authorizationEnabled=true
superUserRoles=admin
brokerClientAuthenticationPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken
brokerClientAuthenticationParameters=file://$tokens/admin.jwt
${PULSAR_EXTRA_CONF:-}"
    "$here/scripts/pulsar.sh" start
    provision ;;
  stop|status|wait) exec "$here/scripts/pulsar.sh" "$@" ;;
  env)
    echo "KOP_PULSAR_SERVICE_URL=pulsar://127.0.0.1:$broker_port"
    echo "KOP_PULSAR_ADMIN_URL=$admin_url"
    echo "KOP_PULSAR_AUTH_TOKEN=$(cat "$tokens/admin.jwt")" ;;
  *) sed -n '2,18p' "$0"; exit 2 ;;
esac
