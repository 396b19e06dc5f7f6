#!/usr/bin/env bash
# Baseline for the gc benchmark: delete every cognigate-managed pool whose name
# starts with PREFIX, domain first, with the aws CLI in a loop (the age check
# is left out, which only favours the baseline). Usage: aws-cli-gc.sh PREFIX
set -euo pipefail
prefix=$1
idp() { aws cognito-idp "$@" --output text; }
for pool_id in $(idp list-user-pools --max-results 60 --query "UserPools[?starts_with(Name, '$prefix')].Id"); do
  read -r domain managed < <(idp describe-user-pool --user-pool-id "$pool_id" \
    --query '[UserPool.Domain, UserPool.UserPoolTags."cognigate:managed"]')
  [ "$managed" = "true" ] || continue
  if [ "$domain" != "None" ] && [ -n "$domain" ]; then
    idp delete-user-pool-domain --domain "$domain" --user-pool-id "$pool_id" >/dev/null
  fi
  idp delete-user-pool --user-pool-id "$pool_id" >/dev/null
done
