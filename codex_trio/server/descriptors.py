"""File descriptors: the process limit, raised once at start, and the share of it idle upstream sockets may use.

Each conversation keeps its upstream WebSocket open between turns (the backend chains turns on it), at about
two descriptors each (the TLS socket, and the eventfd of the call waiting on it). Left unbounded they took every
descriptor under `ulimit -n 1024`, after which every request failed with "Too many open files". The budget
leaves half of the limit to everything else (client connections, files, the account store, HTTPS calls).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DESCRIPTORS_PER_UPSTREAM_SOCKET = 2
UPSTREAM_SHARE = 0.5  # of the descriptor limit
MIN_UPSTREAM_SOCKETS = 8  # below this, conversations lose their chaining all the time; a tiny limit still works
MAX_UPSTREAM_SOCKETS = 2048  # enough for any real load; beyond it idle sockets only cost the backend
UNLIMITED_AS = 1 << 20  # what an "unlimited" hard limit is raised to
LOW_HARD_LIMIT = 512  # `doctor` calls a hard limit below this a problem


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (what `ulimit -n` allows without privileges).
    Returns (soft, hard) as they are afterwards; (-1, -1) where the platform has no such limit."""
    try:
        import resource
    except ImportError:  # not POSIX
        return -1, -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _reachable(soft, hard, resource.RLIM_INFINITY)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            log.debug("raised the open-file limit from %d to %d", soft, wanted)
            soft = wanted
        except (ValueError, OSError) as exc:  # e.g. macOS caps the soft limit below an "unlimited" hard one
            log.debug("could not raise the open-file limit from %d: %s", soft, exc)
    return soft, hard


def _reachable(soft: int, hard: int, infinity: int) -> int:
    """The soft limit a process can raise itself to."""
    return hard if hard != infinity else max(soft, UNLIMITED_AS)


def upstream_socket_budget(limit: int) -> int:
    """How many upstream sockets may stay open for a process allowed `limit` descriptors."""
    if limit < 0:
        return MAX_UPSTREAM_SOCKETS
    share = int(limit * UPSTREAM_SHARE) // DESCRIPTORS_PER_UPSTREAM_SOCKET
    return max(MIN_UPSTREAM_SOCKETS, min(MAX_UPSTREAM_SOCKETS, share))


def open_descriptors() -> int | None:
    """How many descriptors the process has open now (Linux /proc, macOS /dev/fd); None when unknown."""
    for path in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(path))
        except OSError:
            continue
    return None


@dataclass(frozen=True)
class DescriptorBudget:
    soft_limit: int
    hard_limit: int
    upstream_sockets: int

    @classmethod
    def at_start(cls) -> "DescriptorBudget":
        """Raise the limit, then derive the budget from it."""
        soft, hard = raise_open_file_limit()
        return cls(soft, hard, upstream_socket_budget(soft))

    @classmethod
    def current(cls) -> "DescriptorBudget":
        """The budget this process would get, without changing its limit (for `doctor`)."""
        try:
            import resource
        except ImportError:
            return cls(-1, -1, upstream_socket_budget(-1))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return cls(soft, hard, upstream_socket_budget(_reachable(soft, hard, resource.RLIM_INFINITY)))

    def doctor_check(self) -> tuple[bool, str, str]:
        """(ok, what was checked, what to do) for `codex-trio doctor`."""
        what = (f"file descriptors: limit {self.soft_limit} (hard {self.hard_limit}; the gateway raises the limit to "
                f"the hard one at start), up to {self.upstream_sockets} idle upstream connections kept open")
        low = 0 <= self.hard_limit < LOW_HARD_LIMIT
        return (not low, what, f"raise the hard open-file limit (ulimit -Hn, or LimitNOFILE= for a systemd "
                               f"service) to at least {LOW_HARD_LIMIT}")

    def as_dict(self) -> dict[str, Any]:
        return {"limit": self.soft_limit, "hard_limit": self.hard_limit, "open": open_descriptors(),
                "upstream_socket_budget": self.upstream_sockets}
