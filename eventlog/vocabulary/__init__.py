"""Every event type the product records; importing this registers them all."""

from eventlog.vocabulary import accounts, jobs, mcp, system

__all__ = ["accounts", "jobs", "mcp", "system"]
