//! The `orgaudit` binary: parse the command line, call the library, map the result to an exit
//! status (0 ran, 1 a gate failed, 2 bad usage/rules/input, 3 network, SMTP or history failure).

mod cli;
mod console;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            console::report_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
