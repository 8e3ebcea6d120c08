//! `ordo`: the Ordo validator and its command-line client.
//!
//! Every command accepts `--json` for machine-readable output and exits non-zero with a
//! one-line reason on failure.

mod cli;
mod commands;
mod output;

use clap::Parser;

use crate::cli::{Cli, Command, KeysCommand};
use crate::output::Output;

fn main() {
    let cli = Cli::parse();
    let out = Output::new(cli.json);
    let result = match cli.command {
        Command::Keys(KeysCommand::New(args)) => commands::keys::new(&args, &out),
        Command::Keys(KeysCommand::Show(args)) => commands::keys::show(&args, &out),
        Command::Run(args) => commands::run::run(&args),
    };
    if let Err(error) = result {
        out.fail(&error);
        std::process::exit(1);
    }
}
