"""This process's id without a system call.

``os.getpid()`` is a system call on every use (glibc stopped caching it), which on this kind of
virtual machine costs one to three microseconds. The request path asks on every request whether
it runs in the process that started its background threads (the usage shipper, the Redis
watcher), so it reads the id kept here instead, which an at-fork hook renews in every child.
"""

from __future__ import annotations

import os

_pid = os.getpid()


def pid() -> int:
    """``os.getpid()``, as of the last fork."""
    return _pid


def _after_fork_in_child() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)
