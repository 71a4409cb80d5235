//! engine: a Bitcask key-value store written against the faultfs `Vfs`.
//!
//! The store itself lands with the engine issue; this crate exists so the workspace layout and
//! its invariant (the engine reaches I/O, time and randomness only through a `Vfs`) are in place.
