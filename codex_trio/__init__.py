"""codex-trio: a local gateway exposing ChatGPT-subscription Codex models as standard AI APIs."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("codex-trio")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
