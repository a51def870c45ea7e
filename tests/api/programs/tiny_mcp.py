"""A tiny stdio MCP server for the job tests; flags choose how it ends.

Run as ``python tiny_mcp.py [flags]``. Standard library only, so it starts
fast. Flags:

- ``--stderr TEXT``: write ``TEXT`` as one stderr line at start.
- ``--exit-after-list CODE``: exit with ``CODE`` right after answering
  ``tools/list``, i.e. just after the client's handshake.
- ``--linger``: keep running after stdin closes, as some real servers do,
  until a signal ends it.
- ``--add-tool-after-list NAME``: right after answering the first
  ``tools/list``, add a tool ``NAME`` and send ``tools/list_changed``.

Tools:

- ``echo {text}``: answers ``text``.
- ``fail``: answers a result with ``isError: true`` and the text
  ``failed on purpose``.
- ``exit {code}``: answers ``exiting with code <code>``, then exits with it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

TOOLS = [
    {
        "name": "echo",
        "description": "Answer the text",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
    {"name": "fail", "inputSchema": {"type": "object"}},
    {
        "name": "exit",
        "inputSchema": {"type": "object", "properties": {"code": {"type": "integer"}}},
    },
]


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def answer(request: dict[str, Any], result: dict[str, Any]) -> None:
    send({"jsonrpc": "2.0", "id": request["id"], "result": result})


def text(request: dict[str, Any], value: str) -> None:
    answer(request, {"content": [{"type": "text", "text": value}]})


def call_tool(request: dict[str, Any]) -> None:
    name = request["params"]["name"]
    arguments = request["params"].get("arguments") or {}
    if name == "echo":
        text(request, str(arguments["text"]))
    elif name == "fail":
        answer(
            request,
            {
                "content": [{"type": "text", "text": "failed on purpose"}],
                "isError": True,
            },
        )
    elif name == "exit":
        code = int(arguments["code"])
        text(request, f"exiting with code {code}")
        os._exit(code)
    else:
        send(
            {
                "jsonrpc": "2.0",
                "id": request["id"],
                "error": {"code": -32602, "message": f"Unknown tool: {name}"},
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stderr", default="")
    parser.add_argument("--exit-after-list", type=int, default=None)
    parser.add_argument("--add-tool-after-list", default="")
    parser.add_argument("--linger", action="store_true")
    options = parser.parse_args()
    if options.stderr:
        sys.stderr.write(options.stderr + "\n")
        sys.stderr.flush()

    tools = list(TOOLS)
    for line in sys.stdin:
        message = json.loads(line)
        method = message.get("method")
        if method is None or "id" not in message:
            continue
        if method == "initialize":
            answer(
                message,
                {
                    "protocolVersion": message["params"]["protocolVersion"],
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "tiny", "version": "1.0"},
                },
            )
        elif method == "tools/list":
            answer(message, {"tools": tools})
            if options.exit_after_list is not None:
                os._exit(options.exit_after_list)
            if options.add_tool_after_list:
                tools.append(
                    {
                        "name": options.add_tool_after_list,
                        "inputSchema": TOOLS[1]["inputSchema"],
                    }
                )
                options.add_tool_after_list = ""
                send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        elif method == "tools/call":
            call_tool(message)
        elif method == "ping":
            answer(message, {})
        else:
            send(
                {
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "error": {"code": -32601, "message": f"no method {method}"},
                }
            )
    while options.linger:
        time.sleep(60)


if __name__ == "__main__":
    main()
