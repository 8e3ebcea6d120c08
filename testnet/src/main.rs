//! `ordo-testnet`: the `ordo testnet` and `ordo bench` commands (the `ordo` binary execs
//! this one for them, with the same arguments). Exits non-zero with a one-line reason on
//! failure.

mod cli;
mod commands;

use clap::Parser;

use crate::cli::{Cli, Command, TestnetCommand};

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    ordo_testnet::interrupt::install();
    let json = cli.json
        || match &cli.command {
            Command::Testnet(TestnetCommand::Up(a)) => a.common.json,
            Command::Testnet(TestnetCommand::Init(a)) => a.json,
            Command::Testnet(TestnetCommand::Status(a)) => a.common.json,
            Command::Testnet(TestnetCommand::Logs(a)) => a.common.json,
            Command::Testnet(TestnetCommand::Down(a)) => a.common.json,
            // `--json FILE` writes a file; a bare `--json` prints the report.
            Command::Bench(a) => matches!(a.json, Some(None)),
            Command::Faults(a) => matches!(a.json, Some(None)),
        };
    let mut command = cli.command;
    // `ordo --testnet-dir D testnet …` and `ordo --rpc URL bench …`: the flags `ordo`
    // takes before the command mean the same here.
    let dir = cli.testnet_dir;
    let result = match &mut command {
        Command::Testnet(TestnetCommand::Up(args)) => {
            args.common.inherit(dir);
            commands::up(args, json)
        }
        Command::Testnet(TestnetCommand::Init(args)) => commands::init(args, json),
        Command::Testnet(TestnetCommand::Status(args)) => {
            args.common.inherit(dir);
            commands::status(args, json)
        }
        Command::Testnet(TestnetCommand::Logs(args)) => {
            args.common.inherit(dir);
            commands::logs(args)
        }
        Command::Testnet(TestnetCommand::Down(args)) => {
            args.common.inherit(dir);
            commands::down(args, json)
        }
        Command::Bench(args) => {
            args.dir = args.dir.take().or(dir);
            args.rpc.extend(cli.rpc);
            commands::bench(args, json)
        }
        Command::Faults(args) => {
            args.dir = args.dir.take().or(dir);
            commands::faults(args, json)
        }
    };
    if let Err(error) = result {
        commands::fail(&error, json);
        std::process::exit(commands::exit_code(&error));
    }
}
