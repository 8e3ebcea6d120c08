//! State model, transaction semantics and the sequential and parallel executors.
//!
//! Not built yet: see the executor issue.
