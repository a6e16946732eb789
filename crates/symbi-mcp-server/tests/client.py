"""A real MCP client (the Python `mcp` SDK) exercising `symbi mcp`: lists the tools, calls
every one, prints one JSON object with the results.

Usage: client.py (--url URL --token TOKEN | --stdio COMMAND ARGS...)
"""

import argparse
import asyncio
import json

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

p = argparse.ArgumentParser()
p.add_argument("--url")
p.add_argument("--token")
p.add_argument("--stdio", nargs=argparse.REMAINDER)
a = p.parse_args()

CALLS = {
    "list_agents": {},
    "get_agent_status": {"name": "greeter"},
    "check_dsl": {"source": "agent a(x: String) -> String {\n  with sandbox = \"Tier1\" {\n    return x;\n  }\n}\n"},
    "evaluate_policy": {"request": {
        "principal": {"agent_id": None, "name": "greeter"}, "category": "invoke_tool", "name": "read_logs",
        "subject": {"kind": "tool", "name": "read_logs"}}},
    "execute_agent": {"agent": "greeter", "input": {"name": "mcp"}},
    "query_audit": {"agent": "greeter", "limit": 200},
}


async def run(target):
    out = {"tools": [], "results": {}}
    async with Client(target) as c:
        tools = await c.list_tools()
        out["tools"] = sorted(t.name for t in tools.tools)
        for name in out["tools"]:
            r = await c.call_tool(name, CALLS.get(name, {}))
            out["results"][name] = {"is_error": bool(r.is_error), "structured": r.structured_content,
                                    "text": r.content[0].text if r.content else None}
        bad = await c.call_tool("check_dsl", {"source": "agent {"})
        out["results"]["check_dsl_bad"] = {"is_error": bool(bad.is_error), "structured": bad.structured_content}
    return out


async def main():
    if a.url:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {a.token}"})
        target = streamable_http_client(a.url, http_client=http)
    else:
        target = StdioServerParameters(command=a.stdio[0], args=a.stdio[1:])
    print(json.dumps(await run(target)), flush=True)


asyncio.run(main())
