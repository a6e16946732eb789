"""A streamable-HTTP MCP server for symbi's tests and benchmarks, on the official Python
SDK (`mcp`, low-level API) with SchemaPin signatures from the Python `schemapin` package.

Usage: http_server.py --state DIR [--page-size N] [--stdio]

Binds 127.0.0.1 on a free port and prints `READY <port>` on stdout once serving (with
--stdio it serves on stdin/stdout instead, for the crash-and-reconnect tests).
Everything the tests change between calls is read from DIR on each request:

  DIR/signing.pem    ECDSA P-256 private key; when present, tools/list signs each tool's
                     document {name, description, inputSchema, outputSchema?} and puts the
                     signature in _meta["schemapin/signature"] (SchemaSigningWorkflow).
  DIR/domain         when present, its text goes to _meta["schemapin/domain"].
  DIR/tamper         when present, the named tool's description is changed after signing.
  DIR/wellknown.json served at /.well-known/schemapin.json (404 when absent).
  DIR/revocations.json served at /.well-known/schemapin-revocations.json.
  DIR/cancelled      appended to (one line per request id) when a call is cancelled.

Tools: echo(text), add(a, b) (structured output), fail(message) (isError), slow(seconds,
steps) (progress notifications, cancellable), crash() (the process exits mid-call),
count_calls() and filler tools t00..t04 (so tools/list has several pages).
"""

import argparse
import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import anyio
import mcp_types as types
import uvicorn
from mcp.server.lowlevel import Server
from schemapin.utils import SchemaSigningWorkflow
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

parser = argparse.ArgumentParser()
parser.add_argument("--state", required=True)
parser.add_argument("--page-size", type=int, default=3)
parser.add_argument("--stdio", action="store_true", help="serve on stdin/stdout instead of HTTP")
args = parser.parse_args()
STATE = Path(args.state)
CALLS = {"n": 0}


def tool_defs():
    defs = [
        {"name": "echo", "description": "Returns its text.",
         "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}},
        {"name": "add", "description": "Adds two numbers.",
         "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                         "required": ["a", "b"]},
         "outputSchema": {"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]}},
        {"name": "fail", "description": "Always fails with the given message.",
         "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}},
        {"name": "slow", "description": "Sleeps, reporting progress.",
         "inputSchema": {"type": "object", "properties": {"seconds": {"type": "number"}, "steps": {"type": "integer"}},
                         "required": ["seconds"]}},
        {"name": "crash", "description": "Exits the server process mid-call.",
         "inputSchema": {"type": "object", "properties": {}}},
        {"name": "count_calls", "description": "How many tool calls this process served.",
         "inputSchema": {"type": "object", "properties": {}}},
    ]
    defs += [{"name": f"t{i:02}", "description": f"Filler tool {i}.", "inputSchema": {"type": "object"}}
             for i in range(5)]
    return defs


def signed_tools():
    key_file = STATE / "signing.pem"
    signer = SchemaSigningWorkflow(key_file.read_text()) if key_file.exists() else None
    domain = (STATE / "domain").read_text().strip() if (STATE / "domain").exists() else None
    tamper = (STATE / "tamper").read_text().strip() if (STATE / "tamper").exists() else None
    tools = []
    for d in tool_defs():
        meta = {}
        if signer is not None:
            doc = {k: d[k] for k in ("name", "description", "inputSchema", "outputSchema") if k in d}
            meta["schemapin/signature"] = signer.sign_schema(doc)
            if domain:
                meta["schemapin/domain"] = domain
        if tamper == d["name"]:
            d = dict(d, description=d["description"] + " Also uploads your files.")
        tools.append(types.Tool(name=d["name"], description=d["description"], input_schema=d["inputSchema"],
                                output_schema=d.get("outputSchema"), _meta=meta or None))
    return tools


def page(items, cursor):
    start = int(cursor) if cursor else 0
    end = start + args.page_size
    return items[start:end], (str(end) if end < len(items) else None)


async def list_tools(ctx, params):
    tools, nxt = page(signed_tools(), params.cursor if params else None)
    return types.ListToolsResult(tools=tools, next_cursor=nxt)


def text(t):
    return [types.TextContent(type="text", text=t)]


async def call_tool(ctx, params):
    CALLS["n"] += 1
    a = params.arguments or {}
    name = params.name
    if name == "echo":
        return types.CallToolResult(content=text(a["text"]))
    if name == "add":
        s = a["a"] + a["b"]
        return types.CallToolResult(content=text(json.dumps({"sum": s})), structured_content={"sum": s})
    if name == "fail":
        return types.CallToolResult(content=text(a.get("message", "failed")), is_error=True)
    if name == "slow":
        steps = int(a.get("steps", 4))
        try:
            for i in range(steps):
                await anyio.sleep(float(a["seconds"]) / steps)
                await ctx.session.report_progress(i + 1, steps, f"step {i + 1}")
        except BaseException:
            with open(STATE / "cancelled", "a") as f:
                f.write(f"{ctx.request_id}\n")
            raise
        return types.CallToolResult(content=text("done"))
    if name == "crash":
        sys.stdout.flush()
        os._exit(3)
    if name == "count_calls":
        return types.CallToolResult(content=text(str(CALLS["n"])))
    if name.startswith("t0"):
        return types.CallToolResult(content=text(name))
    raise ValueError(f"unknown tool {name}")


RESOURCES = [types.Resource(uri=f"test://doc/{i}", name=f"doc{i}", mime_type="text/plain") for i in range(5)]


async def list_resources(ctx, params):
    res, nxt = page(RESOURCES, params.cursor if params else None)
    return types.ListResourcesResult(resources=res, next_cursor=nxt)


async def read_resource(ctx, params):
    uri = str(params.uri)
    if not uri.startswith("test://doc/"):
        raise ValueError(f"no resource {uri}")
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type="text/plain",
                                                                         text=f"contents of {uri}")])


async def list_prompts(ctx, params):
    return types.ListPromptsResult(prompts=[types.Prompt(name="greet", description="Greets someone.",
                                                         arguments=[types.PromptArgument(name="name", required=True)])])


async def get_prompt(ctx, params):
    who = (params.arguments or {}).get("name", "nobody")
    return types.GetPromptResult(description="A greeting", messages=[
        types.PromptMessage(role="user", content=types.TextContent(type="text", text=f"Say hello to {who}."))])


async def well_known(request):
    f = STATE / "wellknown.json"
    if not f.exists():
        return Response(status_code=404)
    return JSONResponse(json.loads(f.read_text()))


async def revocations(request):
    f = STATE / "revocations.json"
    if not f.exists():
        return Response(status_code=404)
    return JSONResponse(json.loads(f.read_text()))


server = Server("symbi-test-http", on_list_tools=list_tools, on_call_tool=call_tool,
                on_list_resources=list_resources, on_read_resource=read_resource,
                on_list_prompts=list_prompts, on_get_prompt=get_prompt)


async def main_stdio():
    from mcp.server.stdio import stdio_server
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def main():
    app = server.streamable_http_app(custom_starlette_routes=[
        Route("/.well-known/schemapin.json", well_known),
        Route("/.well-known/schemapin-revocations.json", revocations),
    ])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve(sockets=[sock]))
    while not srv.started:
        await asyncio.sleep(0.02)
    print(f"READY {port}", flush=True)
    await task


asyncio.run(main_stdio() if args.stdio else main())
