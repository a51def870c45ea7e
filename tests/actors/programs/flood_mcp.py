"""An MCP server that floods its stderr and stdout right after its handshake.

Run as ``python flood_mcp.py LINES``. After answering ``tools/list`` it
writes ``LINES`` stderr lines and closes stderr, then writes ``LINES`` lines
of noise and ``LINES`` notifications on stdout, then asks the client for a
``ping`` (id ``"flood-done"``) and exits once the answer arrives. Everything
it wrote is then in the client's hands, which lets a test count exactly.
Standard library only, so it starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

STDERR_LINE = "stderr line {:06d} of the flood"
NOISE_LINE = "noise line {:06d} of the flood"


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def flood(lines: int) -> None:
    for number in range(lines):
        sys.stderr.write(STDERR_LINE.format(number) + "\n")
    sys.stderr.flush()
    os.close(2)
    for number in range(lines):
        sys.stdout.write(NOISE_LINE.format(number) + "\n")
        note = {"jsonrpc": "2.0", "method": "notifications/message"}
        sys.stdout.write(json.dumps({**note, "params": {"n": number}}) + "\n")
    sys.stdout.flush()
    send({"jsonrpc": "2.0", "id": "flood-done", "method": "ping"})


def main() -> None:
    lines = int(sys.argv[1])
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("id") == "flood-done":
            os._exit(0)
        method = message.get("method")
        if method == "initialize":
            result: dict[str, Any] = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "flood", "version": "1.0"},
            }
            send({"jsonrpc": "2.0", "id": message["id"], "result": result})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": message["id"], "result": {"tools": []}})
            flood(lines)


if __name__ == "__main__":
    main()
