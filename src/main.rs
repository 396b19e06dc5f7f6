//! `cognigate`: provision Amazon Cognito for an MCP gateway. The program lives
//! in the library ([`cognigate::provision::main`]) so its types stay private
//! to the crate; this file only hands over.

fn main() -> std::process::ExitCode {
    cognigate::provision::main()
}
