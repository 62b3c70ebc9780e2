"""Exceptions that cross the syscall gate."""
from __future__ import annotations


class Refused(Exception):
    """The kernel refused a syscall (unknown call, bad argument, permission denied).
    The message is written for the agent and the person reading the audit."""

    def __init__(self, message: str, decision: str = "deny") -> None:
        super().__init__(message)
        self.decision = decision


class ProcessKilled(Exception):
    """Raised at a syscall boundary of a process whose kill was requested."""


class ModelError(Exception):
    """A model call failed for good (after retries); the message says why, for people."""
