//! `ordo keys`: create and inspect key files.

use anyhow::{Context, Result};
use ordo_types::{keyfile, KeyPair};
use serde_json::json;

use crate::cli::{KeysNewArgs, KeysShowArgs};
use crate::output::Output;

pub fn new(args: &KeysNewArgs, out: &Output) -> Result<()> {
    let key = KeyPair::generate();
    keyfile::write(&args.out, &key).context("cannot create the key")?;
    let path = args.out.display().to_string();
    out.emit(
        json!({ "address": key.address(), "public_key": key.public(), "path": path }),
        || {
            format!(
                "address     {}\npublic key  {}\nwritten to  {path} (mode 0600)",
                key.address(),
                key.public()
            )
        },
    );
    Ok(())
}

pub fn show(args: &KeysShowArgs, out: &Output) -> Result<()> {
    let key = keyfile::read(&args.path)?;
    let path = args.path.display().to_string();
    out.emit(
        json!({ "address": key.address(), "public_key": key.public(), "path": path }),
        || {
            format!(
                "address     {}\npublic key  {}",
                key.address(),
                key.public()
            )
        },
    );
    Ok(())
}
