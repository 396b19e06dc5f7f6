//! `cognigate-gateway`: the MCP gateway. The program lives in the library
//! ([`cognigate::gateway::main`]) so its types stay private to the crate;
//! this file only hands over.

fn main() -> std::process::ExitCode {
    cognigate::gateway::main()
}
