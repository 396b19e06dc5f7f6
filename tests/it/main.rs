//! Integration tests: one binary (so the AWS SDK links once), real peers from
//! `tests/support`, the real `cognigate` binaries. The folders mirror `src/`:
//! `provision/` for the CLI, `gateway/` for the gateway (its router driven
//! without a port), `e2e/` for both binaries with the official MCP clients and
//! Chromium; `contract` and `local_mode` span both.

// The harness is one private tree; `pub` there marks what tests share.
#![allow(unreachable_pub)]

#[path = "../support/mod.rs"]
mod support;

mod attacks;
mod container;
mod contract;
mod deploy;
mod e2e;
mod gateway;
mod local_mode;
mod provision;
mod readme;
