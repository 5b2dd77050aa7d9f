"""`portcullis proxy` in front of @modelcontextprotocol/server-everything, driven by the
official Python MCP SDK over stdio and over streamable HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from conftest import Policy, http_proxy, portcullis_bin, upstream_command

pytestmark = pytest.mark.anyio

ROOT_KEY = "e2e-root-key-0123456789abcdef-0123456789abcdef"
TRANSPORTS = ["stdio", "http"]

BASE = """
config:
  default_effect: deny
  elicit_expiry: 600
policies:
  - "bf:echo:tool_access:allow"
  - "bf:get-sum:tool_access:allow"
  - "bf:get-env:tool_access:deny"
  - "bf:get-structured-content:tool_access:allow"
"""


def proxy_env() -> dict[str, str]:
    return {**os.environ, "PORTCULLIS_ROOT_KEY": ROOT_KEY}


def mint(user: str) -> str:
    out = subprocess.run(
        [portcullis_bin(), "token", "mint", "--user", user, "--ttl", "1h"],
        env=proxy_env(), capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


class Asker:
    """An elicitation callback that answers every question the same way and counts them."""

    def __init__(self, action: str):
        self.action = action
        self.messages: list[str] = []

    async def __call__(self, context, params) -> types.ElicitResult:
        self.messages.append(params.message)
        if self.action != "accept":
            return types.ElicitResult(action=self.action)
        schema = params.requested_schema or {}
        content = {name: True for name, p in schema.get("properties", {}).items() if p.get("type") == "boolean"}
        return types.ElicitResult(action="accept", content=content)


@contextlib.asynccontextmanager
async def session(transport: str, policy: Policy, tmp_path: Path, asker: Asker | None = None,
                  token: str | None = None):
    """A client session through a fresh proxy process (HTTP: with a macaroon bearer token)."""
    kwargs = {"elicitation_callback": asker} if asker else {}
    if transport == "stdio":
        params = StdioServerParameters(
            command=portcullis_bin(),
            args=["proxy", "--config", str(policy.path), "--", *upstream_command()],
            env=proxy_env(),
        )
        async with stdio_client(params) as (r, w), ClientSession(r, w, **kwargs) as s:
            await s.initialize()
            yield s
    else:
        with http_proxy(policy, tmp_path / "proxy.log", env=proxy_env()) as url:
            headers = {"Authorization": f"Bearer {token or mint('ann')}"}
            async with httpx2.AsyncClient(headers=headers, timeout=30) as http, \
                    streamable_http_client(url, http_client=http) as (r, w), \
                    ClientSession(r, w, **kwargs) as s:
                await s.initialize()
                yield s


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if c.type == "text")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_tools_list_hides_what_the_caller_can_never_call(transport, policy, tmp_path):
    policy.write(BASE + '  - "bf:get-tiny-image:tool_access:elicit"\n')
    async with session(transport, policy, tmp_path) as s:
        names = {t.name for t in (await s.list_tools()).tools}
    # get-env is denied and every tool no rule mentions falls to default deny; a tool that
    # needs approval stays visible.
    assert names == {"echo", "get-sum", "get-structured-content", "get-tiny-image"}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_denied_tool_returns_is_error_with_the_reason(transport, policy, tmp_path):
    policy.write(BASE)
    async with session(transport, policy, tmp_path) as s:
        denied = await s.call_tool("get-env", {})
        unmentioned = await s.call_tool("toggle-simulated-logging", {})
    assert denied.is_error and "get-env" in text_of(denied), denied
    assert "PATH" not in text_of(denied)  # the upstream never ran
    assert unmentioned.is_error, unmentioned


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_allowed_tool_returns_the_upstream_result_unchanged(transport, policy, tmp_path):
    policy.write(BASE)
    direct = StdioServerParameters(command=upstream_command()[0], args=upstream_command()[1:])
    async with stdio_client(direct) as (r, w), ClientSession(r, w) as s:
        await s.initialize()
        want = await s.call_tool("get-sum", {"a": 2, "b": 40})
    async with session(transport, policy, tmp_path) as s:
        got = await s.call_tool("get-sum", {"a": 2, "b": 40})
    assert got.model_dump(exclude={"meta"}) == want.model_dump(exclude={"meta"})
    assert "42" in text_of(got)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_field_is_redacted_in_structured_content_and_text_alike(transport, policy, tmp_path):
    policy.write(BASE + '  - "af:get-structured-content:field_access:deny:humidity"\n')
    async with session(transport, policy, tmp_path) as s:
        # The SDK validates structuredContent against the advertised outputSchema: this call
        # fails unless the proxy adjusted the schema for the redacted field.
        result = await s.call_tool("get-structured-content", {"location": "New York"})
    assert not result.is_error, result
    assert result.structured_content["humidity"] == "[REDACTED]"
    assert isinstance(result.structured_content["temperature"], (int, float))
    assert json.loads(text_of(result))["humidity"] == "[REDACTED]"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_approved_tool_runs_and_is_not_asked_again(transport, policy, tmp_path):
    policy.write(BASE.replace("bf:get-sum:tool_access:allow", "bf:get-sum:tool_access:elicit"))
    asker = Asker("accept")
    async with session(transport, policy, tmp_path, asker) as s:
        first = await s.call_tool("get-sum", {"a": 1, "b": 2})
        second = await s.call_tool("get-sum", {"a": 3, "b": 4})
    assert not first.is_error and "3" in text_of(first), first
    assert not second.is_error and "7" in text_of(second), second
    assert len(asker.messages) == 1, asker.messages
    assert "get-sum" in asker.messages[0]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_a_declined_tool_is_denied(transport, action, policy, tmp_path):
    policy.write(BASE.replace("bf:get-sum:tool_access:allow", "bf:get-sum:tool_access:elicit"))
    asker = Asker(action)
    async with session(transport, policy, tmp_path, asker) as s:
        result = await s.call_tool("get-sum", {"a": 1, "b": 2})
    assert result.is_error, result
    assert len(asker.messages) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("action", ["accept", "decline"])
async def test_an_elicited_field_is_shown_on_accept_and_redacted_on_decline(transport, action, policy, tmp_path):
    policy.write(BASE + '  - "af:get-structured-content:field_access:elicit:conditions"\n')
    asker = Asker(action)
    async with session(transport, policy, tmp_path, asker) as s:
        first = await s.call_tool("get-structured-content", {"location": "New York"})
        second = await s.call_tool("get-structured-content", {"location": "New York"})
    for result in (first, second):
        assert not result.is_error, result
        conditions = result.structured_content["conditions"]
        if action == "accept":
            assert conditions != "[REDACTED]"
        else:
            assert conditions == "[REDACTED]"
    # The answer, either way, holds until it expires: one question for two calls.
    assert len(asker.messages) == 1, asker.messages
    assert "conditions" in asker.messages[0]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_client_without_elicitation_is_denied_with_approval_required(transport, policy, tmp_path):
    policy.write(BASE.replace("bf:get-sum:tool_access:allow", "bf:get-sum:tool_access:elicit"))
    async with session(transport, policy, tmp_path) as s:
        result = await s.call_tool("get-sum", {"a": 1, "b": 2})
    assert result.is_error, result
    assert "approval" in text_of(result).lower(), text_of(result)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_rewritten_policy_changes_the_next_decision(transport, policy, tmp_path):
    policy.write(BASE)
    async with session(transport, policy, tmp_path) as s:
        before = await s.call_tool("echo", {"message": "hi"})
        assert not before.is_error, before
        policy.write(BASE.replace("bf:echo:tool_access:allow", "bf:echo:tool_access:deny"))
        deadline = time.monotonic() + 5
        while True:
            after = await s.call_tool("echo", {"message": "hi"})
            if after.is_error or time.monotonic() > deadline:
                break
            await anyio.sleep(0.05)
    assert after.is_error, "the rewritten policy did not take effect within 5 s"


async def test_http_without_or_with_a_bad_token_gets_401(policy, tmp_path):
    policy.write(BASE)
    init = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    forged = mint("ann")[:-4] + "AAAA"
    with http_proxy(policy, tmp_path / "proxy.log", env=proxy_env()) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            missing = await http.post(url, json=init, headers=headers)
            bad = await http.post(url, json=init, headers={**headers, "Authorization": f"Bearer {forged}"})
            good = await http.post(url, json=init, headers={**headers, "Authorization": f"Bearer {mint('ann')}"})
    for response in (missing, bad):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer"), response.headers
    assert good.status_code == 200, good.text


async def test_http_an_approval_comes_back_as_a_token_another_proxy_accepts(policy, tmp_path):
    policy.write(BASE.replace("bf:get-sum:tool_access:allow", "bf:get-sum:tool_access:elicit"))
    token = mint("ann")
    asker = Asker("accept")
    async with session("http", policy, tmp_path, asker, token=token) as s:
        first = await s.call_tool("get-sum", {"a": 1, "b": 2})
    assert not first.is_error, first
    refreshed = (first.meta or {}).get("portcullis/token")
    assert refreshed and refreshed != token, first.meta
    # A new proxy process: no memory of the approval, only the root key. The refreshed token
    # carries the sealed grant, so the user is not asked again.
    never = Asker("decline")
    async with session("http", policy, tmp_path, never, token=refreshed) as s:
        again = await s.call_tool("get-sum", {"a": 20, "b": 22})
    assert not again.is_error and "42" in text_of(again), again
    assert never.messages == []
    # The old token on a new proxy still asks (and is declined here).
    async with session("http", policy, tmp_path, never, token=token) as s:
        old = await s.call_tool("get-sum", {"a": 1, "b": 1})
    assert old.is_error, old
    assert len(never.messages) == 1


async def test_http_a_tampered_refreshed_token_gets_401(policy, tmp_path):
    policy.write(BASE.replace("bf:get-sum:tool_access:allow", "bf:get-sum:tool_access:elicit"))
    async with session("http", policy, tmp_path, Asker("accept")) as s:
        first = await s.call_tool("get-sum", {"a": 1, "b": 2})
    refreshed = first.meta["portcullis/token"]
    # Flip one character in the middle (inside the grant caveat or the signature chain).
    i = len(refreshed) // 2
    forged = refreshed[:i] + ("A" if refreshed[i] != "A" else "B") + refreshed[i + 1:]
    init = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with http_proxy(policy, tmp_path / "proxy2.log", env=proxy_env()) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.post(url, json=init, headers={**headers, "Authorization": f"Bearer {forged}"})
    assert response.status_code == 401, response.text
