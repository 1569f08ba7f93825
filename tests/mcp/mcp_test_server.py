"""A small MCP server for the tests, written with the `mcp` SDK (FastMCP).

`python mcp_test_server.py stdio` serves over stdio; `python mcp_test_server.py http <port>`
over streamable HTTP at http://127.0.0.1:<port>/mcp. Every call of `write_note` appends a line
to the file named by MCP_TEST_NOTES, so a test can count how often it really ran.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp.server.fastmcp import FastMCP

server = FastMCP(
    "inventory",
    host="127.0.0.1",
    port=int(sys.argv[2]) if len(sys.argv) > 2 else 0,
    log_level="WARNING",
)


@server.tool()
def lookup(sku: str) -> str:
    """Stock level of an item by its SKU."""
    return f"SKU {sku}: 7 in stock (pid {os.getpid()})"


@server.tool()
def write_note(text: str) -> str:
    """Write a note to the shared notebook."""
    with Path(os.environ["MCP_TEST_NOTES"]).open("a", encoding="utf-8") as notes:
        notes.write(text + "\n")
    return f"noted: {text}"


@server.tool()
def dump(megabytes: int) -> str:
    """Return this many megabytes of text."""
    return "x" * (megabytes * 1024 * 1024)


@server.tool(name="stock.level")
def stock_level_dotted() -> str:
    """A name a model API does not accept: offered as inventory__stock_level."""
    return "12"


@server.tool(name="stock_level")
def stock_level() -> str:
    """Collides with stock.level once its dot is replaced: skipped, and reported."""
    return "13"


@server.tool()
def secret_admin_tool() -> str:
    """A tool the servers file denies."""
    return "should never be offered"


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        server.settings.stateless_http = True
        server.run("streamable-http")
