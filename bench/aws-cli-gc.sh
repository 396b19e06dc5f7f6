#!/usr/bin/env bash
# Baseline for the gc benchmark: delete every cognigate-managed pool whose name
# starts with PREFIX, domain first, with the aws CLI in a loop (the age check
# is left out, which only favours the baseline). Usage: aws-cli-gc.sh PREFIX
set -euo pipefail
prefix=$1
source "$(dirname "$0")/aws-cli-lib.sh"
for pool_id in $(list_pools | awk -v prefix="$prefix" 'index($2, prefix) == 1 { print $1 }'); do
  read -r domain managed < <(idp describe-user-pool --user-pool-id "$pool_id" \
    --query '[UserPool.Domain, UserPool.UserPoolTags."cognigate:managed"]')
  [ "$managed" = "true" ] || continue
  if [ "$domain" != "None" ] && [ -n "$domain" ]; then
    idp delete-user-pool-domain --domain "$domain" --user-pool-id "$pool_id" >/dev/null
  fi
  idp delete-user-pool --user-pool-id "$pool_id" >/dev/null
done
