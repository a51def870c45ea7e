"""Every event type the product records; importing this registers them all."""

from eventlog.vocabulary import jobs, mcp, system

__all__ = ["jobs", "mcp", "system"]
