//! Integration tests of `cognigate-gateway`: the router driven without a port
//! (`tower::ServiceExt::oneshot`), against a real upstream MCP stand-in and a
//! minimal IdP (JWKS + token endpoint) signing with moto's shipped RSA key.

pub(crate) mod harness;

mod access;
mod aggregate;
mod authorize;
mod boot;
mod cimd;
mod device;
mod discovery;
mod flow;
mod keys;
mod proxy;
mod register;
mod serving;
mod spec;
mod store_down;
mod token;
mod traces;
mod upstream_connect;
pub(crate) mod upstream_faults;
mod upstream_oauth_boot;
mod upstream_streams;
