"""codex-trio: a local gateway exposing ChatGPT-subscription Codex models as standard AI APIs."""

from importlib.metadata import PackageNotFoundError, version as _version

# One version: rust/Cargo.toml's. maturin writes it into the package metadata (pyproject's `dynamic = ["version"]`)
# and compiles it into the native module (`_native.version()`); tests/test_version.py keeps them equal.
try:
    __version__ = _version("codex-trio")
except PackageNotFoundError:  # a source tree that was never installed: the native module built from it knows
    try:
        from ._native import version as _native_version

        __version__ = _native_version()
    except ImportError:
        __version__ = "0.0.0+source"
