//! Integration tests: one binary (so the AWS SDK links once), real peers from
//! `tests/support`, the real `cognigate` binaries.

// The harness is one private tree; `pub` there marks what tests share.
#![allow(unreachable_pub)]

#[path = "../support/mod.rs"]
mod support;

mod contract;
mod destroy;
mod e2e;
mod gateway;
mod gc;
mod lifecycle;
mod local_mode;
mod up;
mod usage;
