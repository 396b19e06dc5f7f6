//! Integration tests: one binary (so the AWS SDK links once), real peers from
//! `tests/support`, the real `cognigate` binaries.

#[path = "../support/mod.rs"]
mod support;

mod attacks;
mod contract;
mod destroy;
mod e2e;
mod gateway;
mod gc;
mod lifecycle;
mod local_mode;
mod up;
mod usage;
