//! HotStuff (2-chain, Jolteon family) consensus as a deterministic state machine.
//!
//! Not built yet: see the consensus issue.
