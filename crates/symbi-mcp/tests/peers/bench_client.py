"""Reference client for `symbi bench mcp`: the Python `mcp` SDK calling `echo` on the same
server symbi calls, sequentially. Prints one JSON line: {"samples_us": [...]}.

Usage: bench_client.py --iterations N --warmup W (--url URL | --stdio PYTHON SCRIPT STATE)
"""

import argparse
import asyncio
import json
import time

from mcp import Client, StdioServerParameters

p = argparse.ArgumentParser()
p.add_argument("--iterations", type=int, required=True)
p.add_argument("--warmup", type=int, default=20)
p.add_argument("--url")
p.add_argument("--stdio", nargs=3)
a = p.parse_args()


async def main():
    if a.url:
        target = a.url
    else:
        py, script, state = a.stdio
        target = StdioServerParameters(command=py, args=[script, "--state", state, "--stdio"])
    async with Client(target) as c:
        await c.list_tools()
        for _ in range(a.warmup):
            await c.call_tool("echo", {"text": "ping"})
        samples = []
        for _ in range(a.iterations):
            t = time.perf_counter_ns()
            r = await c.call_tool("echo", {"text": "ping"})
            samples.append((time.perf_counter_ns() - t) / 1000.0)
            assert r.content[0].text == "ping"
    print(json.dumps({"samples_us": samples}), flush=True)


asyncio.run(main())
