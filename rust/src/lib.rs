//! `codex_trio._native`: upstream transport with the real Codex client's TLS profiles,
//! the eventfd bridge to trio, and token counting. Logic stays in Python.

use pyo3::prelude::*;

/// Version of the native crate, so Python can check it loaded the build it expects.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(version, m)?)?;
    Ok(())
}
