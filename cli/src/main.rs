//! `ordo`: the Ordo validator (`ordo run`, a thin start of `ordo_node::run`) and its
//! command-line client.
//!
//! Every command accepts `--json` for machine-readable output and exits non-zero with a
//! one-line reason on failure; the exit statuses are listed in `ordo --help`.
//! `ordo testnet` and `ordo bench` are carried out by the `ordo-testnet` binary.

mod cli;
mod commands;
mod output;

use std::ffi::OsString;

use clap::Parser;

use crate::cli::{Cli, Command, ContractCommand, GenesisCommand, KeysCommand};
use crate::commands::endpoint::Target;
use crate::commands::errors::ClientError;
use crate::commands::{contract, external, genesis, keys, query, run, submit};
use crate::output::Output;

// A validator allocates and frees small buffers at a high rate on every core (messages,
// transactions, write sets); glibc's allocator spent about 4% of a 4-validator testnet's
// CPU in malloc and free, plus the page faults of memory it gave back and took again
// (`keep_freed_pages_mapped` in `main` keeps mimalloc from doing the same).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    ordo_execution::allocator::keep_freed_pages_mapped();
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(command) = external::delegated(&args) {
        let json = args.iter().any(|a| a == "--json");
        fail(&Output::new(json), external::exec(command, &args));
    }
    let cli = Cli::parse_from(args.iter());
    let out = Output::new(cli.json);
    let target = Target::new(cli.rpc, cli.testnet_dir);
    let result = match cli.command {
        Command::Keys(KeysCommand::New(args)) => keys::new(&args, &out),
        Command::Keys(KeysCommand::Show(args)) => keys::show(&args, &out),
        Command::Keys(KeysCommand::Validator(args)) => genesis::validator(&args, &out),
        Command::Genesis(GenesisCommand::Build(args)) => genesis::build(&args, &out),
        Command::Genesis(GenesisCommand::Hash(args)) => genesis::hash(&args, &out),
        Command::Run(args) => run::run(&args),
        Command::Testnet(_) => Err(external::exec("testnet", &args)),
        Command::Bench(_) => Err(external::exec("bench", &args)),
        Command::Faults(_) => Err(external::exec("faults", &args)),
        Command::Account(args) => query::account(&args, &target, &out),
        Command::Transfer(args) => submit::transfer(&args, &target, &out),
        Command::Swap(args) => submit::swap(&args, &target, &out),
        Command::Mint(args) => submit::mint(&args, &target, &out),
        Command::Contract(ContractCommand::Deploy(args)) => contract::deploy(&args, &target, &out),
        Command::Contract(ContractCommand::Call(args)) => contract::call(&args, &target, &out),
        Command::Contract(ContractCommand::Read(args)) => contract::read(&args, &target, &out),
        Command::Tx(args) => query::tx(&args, &target, &out),
        Command::Block(args) => query::block(&args, &target, &out),
        Command::Status => query::status(&target, &out),
    };
    if let Err(error) = result {
        fail(&out, error);
    }
}

/// Reports `error` in one line and exits with its status (1 unless the client says).
fn fail(out: &Output, error: anyhow::Error) -> ! {
    let client = error.downcast_ref::<ClientError>();
    let code = client.map_or(1, ClientError::exit_code);
    out.fail(&error, client.map(ClientError::kind).as_deref(), code);
    std::process::exit(code);
}
