//! `codex_trio._native`: upstream transport with the real Codex client's TLS profiles,
//! the eventfd bridge to trio, and token counting. Logic stays in Python.
//!
//! Everything except `py` is plain Rust, so `cargo test -p codex-trio-native` runs without libpython.

pub mod bridge;
pub mod error;
pub mod runtime;
pub mod tls;
pub mod tokens;
pub mod transport;
pub mod tunnel;
pub mod ws;

#[cfg(feature = "pyo3")]
mod py;
