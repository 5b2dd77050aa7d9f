"""What each Python policy layer adds to a tools/call inside a real MCP server: FastMCP (the
fastmcp==2.13.3 the macaroon package needs) with no middleware, with mcp-auth-guard's
middleware and with mcp-macaroon-middleware's, each called in memory by FastMCP's own client
(`fastmcp.Client(server)`), same echo tool, same arguments. Clients are measured in
alternating blocks, as the Rust side does, so machine noise hits all of them alike.

Neither middleware can learn who the caller is over FastMCP's in-memory transport (no HTTP
headers, no access token), so each gets a fixed identity, as Portcullis' layer does in the
Rust measurement (`Authenticator::fixed`): auth-guard an authenticator returning ann with
role analyst, the macaroon middleware an access token whose `login` claim is ann. Their
policies are the N=10 rule set of spec.py (auth-guard: role + tool; macaroon: its compact
lines, no parameters, so its parameter bug is not hit).
"""

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import yaml
from fastmcp import Client, FastMCP

import mcp_macaroon_middleware.core.middleware as macaroon_module
from mcp_auth_guard import AuthGuardMiddleware
from mcp_auth_guard.schemas.auth import AuthContext, AuthMethod
from mcp_macaroon_middleware import MacaroonMiddleware

import seeds


def server(tool_name, middleware=None):
    mcp = FastMCP("peers")

    def echo(text: str) -> str:
        return f"echo: {text}"

    # No output schema, like the rmcp echo tool: the macaroon middleware drops structured
    # content, which a tool with an output schema would then fail on.
    mcp.tool(echo, name=tool_name, output_schema=None)
    if middleware is not None:
        mcp.add_middleware(middleware)
    return mcp


class FixedIdentity:
    async def authenticate(self, headers):
        return AuthContext(user_id="ann", roles=["analyst"], authenticated=True,
                           auth_method=AuthMethod.HEADER_BASED)


def auth_guard(rule_set):
    mw = AuthGuardMiddleware(policies=[seeds.guard_policy(rule_set)])
    mw.identity_manager._authenticator = FixedIdentity()
    return mw


def macaroon(rule_set, workdir):
    path = Path(workdir) / "macaroon-policy.yaml"
    path.write_text(yaml.safe_dump({
        "config": {"secret_key": seeds.SECRET, "elicit_expiry": 3600},
        "policies": rule_set["compact"],
    }))
    macaroon_module.get_access_token = lambda: SimpleNamespace(claims={"login": "ann"})
    return MacaroonMiddleware(config_path=str(path))


async def measure(clients, tool, args, blocks, per_block):
    expected = f"echo: {args['text']}"
    samples = {name: [] for name, _ in clients}
    for _, c in clients:  # warm up
        for _ in range(200):
            await c.call_tool(tool, args)
    for _ in range(blocks):
        for name, c in clients:
            for _ in range(per_block):
                t = time.perf_counter_ns()
                r = await c.call_tool(tool, args)
                samples[name].append(time.perf_counter_ns() - t)
                assert not r.is_error and r.content[0].text == expected, (name, r)
    return {name: statistics.median(s) / 1000 for name, s in samples.items()}


async def run_async(spec):
    m = spec["mcp"]
    rule_set = next(r for r in spec["rule_sets"] if r["n"] == m["n"])
    assert rule_set["cases"][0]["tool"] == m["tool"]  # the tool is allowed by the last rule
    with tempfile.TemporaryDirectory() as tmp:
        servers = {
            "bare": server(m["tool"]),
            "auth-guard": server(m["tool"], auth_guard(rule_set)),
            "macaroon": server(m["tool"], macaroon(rule_set, tmp)),
        }
        # The layers really police: admin_tool is refused by both.
        for name in ("auth-guard", "macaroon"):
            s = servers[name]
            s.tool(lambda: "done", name="admin_tool", output_schema=None)
            async with Client(s) as c:
                r = await c.call_tool("admin_tool", {}, raise_on_error=False)
                assert r.is_error, (name, r)
        clients = {name: Client(s) for name, s in servers.items()}
        for c in clients.values():
            await c.__aenter__()
        try:
            p50 = await measure(list(clients.items()), m["tool"], m["args"], m["blocks"],
                                m["per_block"])
        finally:
            for c in clients.values():
                await c.__aexit__(None, None, None)
    calls = m["blocks"] * m["per_block"]
    return {"p50_us": p50, "calls": calls, "policy_rules": m["n"]}


def run(spec):
    return asyncio.run(run_async(spec))
