//! The attack matrix: one named test per attack on the gateway, each showing
//! the attack fail. New attacks live in this directory; attacks that earlier
//! tests already cover are listed here with the test that covers them.
//!
//! | attack | test |
//! |---|---|
//! | token expired, other route, tampered, garbage | `gateway::proxy::invalid_expired_and_other_route_tokens_are_401_invalid_token` |
//! | ID token expired / wrong issuer / wrong audience / access token / nonce | `gateway::flow::callback_rejects_*` |
//! | `alg: none`, HS256 keyed with the public key, unknown `kid` | `gateway::flow::callback_rejects_alg_none`, `callback_rejects_hs256`, `callback_rejects_an_unknown_kid_and_rate_limits_jwks_fetches` |
//! | PKCE missing / plain / wrong | `gateway::authorize::pkce_and_response_type_are_required`, `gateway::token::code_checks` |
//! | redirect URI unregistered / `javascript:` / `data:` | `gateway::authorize::errors_before_the_redirect_uri_is_trusted_are_pages`, `gateway::register::refuses_bad_redirect_uris` |
//! | state missing or replayed (IdP leg) | `gateway::authorize::callback_refuses_unknown_or_reused_state` |
//! | consent without / with another CSRF token, framed | `gateway::flow::consent_requires_the_csrf_cookie`, `consent_screen_names_everything_and_is_locked_down` |
//! | code twice / other client / other redirect / other resource | `gateway::token::code_checks`, `resource_at_the_token_endpoint_must_match` |
//! | refresh reused / by another client | `gateway::token::refresh_rotation_and_reuse_revokes_the_family`, `refresh_token_is_bound_to_its_client` |
//! | storage amplification, client credentials requests amplified into Cognito's (billed) | `attacks::storage::*` |
//! | a machine token at a route its scopes do not name, a deleted client minting | `e2e::machine::a_machine_client_calls_a_tool_with_no_browser_until_it_is_removed` |
//! | DNS rebinding (`Origin`, `Host`) | `attacks::rebinding::*` |
//! | slow clients, huge headers and bodies, connection floods | `attacks::slow::*` |
//! | forged `X-Forwarded-For`, refresh family past its lifetime, code replay, session hijack | `attacks::tokens::*` |
//! | list filter bypassed by id normalisation (`-0`, `1.0`), duplicate ids, lists on GET streams and replays | `attacks::policies::hidden_tools_stay_hidden_whatever_the_request_id`, `lists_on_get_streams_and_replays_are_filtered` |
//! | duplicate or case-variant JSON-RPC keys (`{"name":"echo","NAME":"add"}`) | `attacks::policies::duplicate_and_case_variant_keys_are_refused` |
//! | a public resource template stretched across `/` into a hidden one | `attacks::policies::a_public_template_does_not_reach_across_segments_into_a_hidden_one` |
//! | `rateLimitBy: ip` behind a proxy, one IPv6 /64 as many clients | `attacks::policies::rate_limit_by_ip_counts_the_client_behind_a_trusted_proxy` |
//! | client `Host` as `X-Forwarded-Host`, query keys polluting the `rewritePattern` | `attacks::policies::client_host_and_query_keys_do_not_steer_the_upstream` |
//! | the identity JWT presented as an access token | `gateway::tokens::tests::only_a_jwt_typed_at_jwt_is_an_access_token` (unit) |

mod policies;
mod rebinding;
mod slow;
mod storage;
mod tokens;
