"""A small stdio MCP server whose misbehaviour the client tests choose by flag.

Run as ``python scripted.py [flags]``. It speaks newline-delimited JSON-RPC
on stdin/stdout with the standard library only, so it starts fast. Tools:

- ``echo {text}``: answers ``text``.
- ``fail``: answers a result with ``isError: true``.
- ``hold {key}``: answers only after ``release {key}`` was answered, which
  puts the two responses out of order.
- ``release {key}``: answers at once, then answers the held call.
- ``ask``: before answering, sends the client a ``ping`` (string id), a
  ``roots/list`` (id 1, the same as the client's first request) and a
  ``sampling/createMessage``, plus a logging notification; answers with the
  responses it got, as JSON text.
- ``crash``: writes a last stderr line and exits with status 3.
- ``huge {size}``: answers a text of ``size`` characters on one line.
- ``chatter {lines}``: writes that many stderr lines, then answers.
- ``add_tool {name}``: adds a tool, sends ``tools/list_changed``, answers.
- ``notifications``: answers the notifications received so far, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

BASE_TOOLS = [
    "echo",
    "fail",
    "hold",
    "release",
    "ask",
    "crash",
    "huge",
    "chatter",
    "add_tool",
    "notifications",
]


class Server:
    """The server's state and its handling of each incoming message."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.tools = [*BASE_TOOLS, *(f"extra-{i}" for i in range(options.extra_tools))]
        self.held: dict[str, Any] = {}
        self.asking: dict[str, Any] | None = None
        self.notifications: list[dict[str, Any]] = []

    def handle(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is None:
            self.on_response(message)
        elif "id" not in message:
            self.notifications.append(message)
        elif method == "initialize":
            offered = message["params"]["protocolVersion"]
            version = self.options.protocol_version or offered
            self.result(
                message,
                {
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": True}},
                    "serverInfo": {"name": "scripted", "version": "1.0"},
                },
            )
        elif method == "tools/list":
            self.list_tools(message)
        elif method == "tools/call":
            self.call_tool(message)
        else:
            self.send(
                {
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "error": {"code": -32601, "message": f"no method {method}"},
                }
            )

    def list_tools(self, message: dict[str, Any]) -> None:
        cursor = (message.get("params") or {}).get("cursor")
        start = 0 if cursor is None else int(cursor.removeprefix("page-"))
        size = self.options.page_size or len(self.tools)
        page = self.tools[start : start + size]
        result: dict[str, Any] = {
            "tools": [
                {"name": name, "inputSchema": {"type": "object"}} for name in page
            ]
        }
        if start + size < len(self.tools):
            result["nextCursor"] = f"page-{start + size}"
        self.result(message, result)

    def call_tool(self, message: dict[str, Any]) -> None:
        name = message["params"]["name"]
        arguments = message["params"].get("arguments") or {}
        if name == "echo":
            self.text(message, arguments["text"])
        elif name == "fail":
            self.result(
                message,
                {
                    "content": [{"type": "text", "text": "failed on purpose"}],
                    "isError": True,
                },
            )
        elif name == "hold":
            self.held[arguments["key"]] = message
        elif name == "release":
            self.text(message, f"released {arguments['key']}")
            self.text(self.held.pop(arguments["key"]), f"held {arguments['key']}")
        elif name == "ask":
            self.ask(message)
        elif name == "crash":
            sys.stderr.write("fatal: crashing on purpose\n")
            sys.stderr.flush()
            os._exit(3)
        elif name == "huge":
            self.text(message, "x" * int(arguments["size"]))
        elif name == "chatter":
            write_stderr_lines(int(arguments["lines"]), "chatter")
            self.text(message, "chattered")
        elif name == "add_tool":
            self.tools.append(arguments["name"])
            self.send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
            self.text(message, "added")
        elif name == "notifications":
            self.text(message, json.dumps(self.notifications))
        else:
            self.send(
                {
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "error": {"code": -32602, "message": f"Unknown tool: {name}"},
                }
            )

    def ask(self, message: dict[str, Any]) -> None:
        self.asking = {"call": message, "answers": {}}
        self.send({"jsonrpc": "2.0", "id": "srv-ping", "method": "ping"})
        self.send(
            {
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": {"level": "info", "data": "asking the client"},
            }
        )
        self.send({"jsonrpc": "2.0", "id": 1, "method": "roots/list"})
        self.send(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "sampling/createMessage",
                "params": {"messages": [], "maxTokens": 1},
            }
        )

    def on_response(self, message: dict[str, Any]) -> None:
        if self.asking is None:
            return
        answers = self.asking["answers"]
        answers[str(message.get("id"))] = {
            key: value for key, value in message.items() if key != "jsonrpc"
        }
        if len(answers) == 3:
            call = self.asking["call"]
            self.asking = None
            self.text(call, json.dumps(answers, sort_keys=True))

    def text(self, request: dict[str, Any], text: str) -> None:
        self.result(request, {"content": [{"type": "text", "text": text}]})

    def result(self, request: dict[str, Any], result: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "id": request["id"], "result": result})

    def send(self, message: dict[str, Any]) -> None:
        sys.stdout.buffer.write(json.dumps(message).encode() + b"\n")
        sys.stdout.buffer.flush()


def write_stderr_lines(count: int, label: str) -> None:
    for number in range(count):
        sys.stderr.write(f"{label} line {number:05d} " + "." * 180 + "\n")
    sys.stderr.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--banner", action="store_true")
    parser.add_argument("--stderr-lines", type=int, default=0)
    parser.add_argument("--protocol-version", default="")
    parser.add_argument("--page-size", type=int, default=0)
    parser.add_argument("--extra-tools", type=int, default=0)
    options = parser.parse_args()

    if options.banner:
        sys.stdout.write("scripted server 1.0 starting on stdio\n\n[not json\n")
        sys.stdout.flush()
    write_stderr_lines(options.stderr_lines, "startup")
    server = Server(options)
    for line in sys.stdin.buffer:
        server.handle(json.loads(line))


if __name__ == "__main__":
    main()
