//! Local multi-validator orchestration and the end-to-end load generator.
//!
//! Not built yet: see the testnet issue.
