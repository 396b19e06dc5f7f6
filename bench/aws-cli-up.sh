#!/usr/bin/env bash
# Baseline for the provisioning benchmark: what a careful shell script around
# the aws CLI does to create-or-reuse the same stack as `cognigate up` and
# write the same env file. Usage: aws-cli-up.sh STACK DOMAIN_PREFIX ENV_FILE
set -euo pipefail
stack=$1 prefix=$2 env_file=$3
cb1="https://gw.example.com/oauth/callback" cb2="http://localhost:9000/oauth/callback"
source "$(dirname "$0")/aws-cli-lib.sh"

pool_id=$(list_pools | awk -v name="$stack" '$2 == name { print $1; exit }')
if [ -z "$pool_id" ]; then
  created_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  pool_id=$(idp create-user-pool --pool-name "$stack" \
    --user-pool-tags "cognigate:stack=$stack,cognigate:managed=true,cognigate:created-at=$created_at" \
    --deletion-protection INACTIVE --query UserPool.Id)
fi

owner=$(idp describe-user-pool-domain --domain "$prefix" --query DomainDescription.UserPoolId)
if [ "$owner" = "None" ] || [ -z "$owner" ]; then
  idp create-user-pool-domain --domain "$prefix" --user-pool-id "$pool_id" >/dev/null
elif [ "$owner" != "$pool_id" ]; then
  echo "domain prefix $prefix belongs to $owner" >&2; exit 1
fi
until [ "$(idp describe-user-pool-domain --domain "$prefix" --query DomainDescription.Status)" = "ACTIVE" ]; do sleep 2; done

client_id=$(idp list-user-pool-clients --user-pool-id "$pool_id" --max-results 60 \
  --query "UserPoolClients[?ClientName=='$stack-gateway'].ClientId | [0]")
if [ "$client_id" = "None" ] || [ -z "$client_id" ]; then
  client_id=$(idp create-user-pool-client --user-pool-id "$pool_id" --client-name "$stack-gateway" \
    --generate-secret --allowed-o-auth-flows code --allowed-o-auth-flows-user-pool-client \
    --allowed-o-auth-scopes openid profile email --supported-identity-providers COGNITO \
    --callback-urls "$cb1" "$cb2" --query UserPoolClient.ClientId)
fi
secret=$(idp describe-user-pool-client --user-pool-id "$pool_id" --client-id "$client_id" --query UserPoolClient.ClientSecret)

region=${AWS_REGION:-us-east-1}
tmp=$(mktemp "$(dirname "$env_file")/.env.XXXXXX")
chmod 600 "$tmp"
cat > "$tmp" <<ENV
COGNITO_USER_POOL_ID=$pool_id
COGNITO_USER_POOL_DOMAIN=$prefix.auth.$region.amazoncognito.com
COGNITO_CLIENT_ID=$client_id
COGNITO_CLIENT_SECRET=$secret
ENV
if cmp -s "$tmp" "$env_file" 2>/dev/null; then rm -f "$tmp"; else mv "$tmp" "$env_file"; fi
