//! One module per command group.

pub mod keys;
pub mod run;
