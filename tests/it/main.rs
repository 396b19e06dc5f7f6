//! Integration tests: one test binary, one module per area.

mod e2e;
