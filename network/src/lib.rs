//! The validator network over libp2p and batch dissemination.
//!
//! Not built yet: see the network issue.
