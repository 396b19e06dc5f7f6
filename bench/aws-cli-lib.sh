# Shared by the aws CLI baselines. aws CLI v1 does not paginate list-user-pools
# when --max-results is given, and that parameter is required, so a correct
# script must follow NextToken itself.
idp() { aws cognito-idp "$@" --output text; }

# Prints "ID NAME" for every user pool in the region.
list_pools() {
  local token="" page
  while :; do
    page=$(aws cognito-idp list-user-pools --max-results 60 ${token:+--next-token "$token"} --output json)
    python3 -c 'import json,sys; [print(p["Id"], p["Name"]) for p in json.load(sys.stdin)["UserPools"]]' <<<"$page"
    token=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("NextToken") or "")' <<<"$page")
    [ -n "$token" ] || break
  done
}
