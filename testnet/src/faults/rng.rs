//! The fault suite draws from the one seeded generator, so that a schedule is
//! reproducible from its seed.

pub use ordo_types::SeededRng as Rng;
