//! The `cognigate` CLI: desired state → plan → apply → rendered outputs.
