//! One module per command group, and the client's shared parts: the node it talks to
//! (`endpoint`), following a transaction (`follow`), and its failures (`errors`).

pub mod contract;
pub mod endpoint;
pub mod errors;
pub mod external;
pub mod follow;
pub mod genesis;
pub mod keys;
pub mod parse;
pub mod query;
pub mod run;
pub mod submit;
