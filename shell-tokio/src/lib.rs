//! `trawl-tokio`: drive the trawl-core agent from a tokio application.
//!
//! Not built yet; this crate re-exports the core so embedders can already use its
//! configuration and relabeling types.

pub use trawl_core as core;
