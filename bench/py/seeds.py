"""The two Python seed engines, driven directly (no server), on the rule sets of spec.py.

- mcp-auth-guard 1.0.0: `PolicyEngine.evaluate(auth_context, resource_context)`, contexts built
  once outside the timed call (as the Rust side builds its requests outside).
- mcp-macaroon-middleware 2.0.0: `PolicyEngine.enforce_policies(macaroon, tool, phase, ...)`,
  which is what the middleware runs per phase: verify the macaroon's HMAC chain and parse
  every caveat, pick the caveats for the tool, run their enforcers. The macaroon holds one
  caveat per policy line, as the middleware builds it.

Every measured call is first checked for the expected decision (and, where the engine says
which rule decided, that rule); a wrong answer stops the run.
"""

import datetime
import json
import logging
import zoneinfo
from types import SimpleNamespace

from harness import median_us, run_sync

# The seeds log on every call (info, and an error on every macaroon deny); logging is off so
# no handler's I/O is timed. This favours the seeds.
logging.disable(logging.CRITICAL)

from mcp.types import TextContent  # noqa: E402
from fastmcp.tools.tool import ToolResult  # noqa: E402
from pymacaroons import Macaroon  # noqa: E402

import mcp_auth_guard  # noqa: E402
from mcp_auth_guard.policy.engine import PolicyEngine as GuardEngine  # noqa: E402
from mcp_auth_guard.schemas.auth import AuthContext, AuthMethod  # noqa: E402
from mcp_auth_guard.schemas.policy import PolicyConfig  # noqa: E402
from mcp_auth_guard.schemas.resource import ResourceContext, ToolResource  # noqa: E402

from mcp_macaroon_middleware import PolicyEngine as MacaroonEngine  # noqa: E402
from mcp_macaroon_middleware import PolicyViolationError, policy_enforcer  # noqa: E402
from mcp_macaroon_middleware.models.caveat import ExecutionPhase  # noqa: E402
from mcp_macaroon_middleware.policies.decorators import get_enforcer  # noqa: E402
from mcp_macaroon_middleware.validators.caveat_validator import CaveatValidator  # noqa: E402

logger = logging.getLogger("mcp_macaroon_middleware.core.policy_engine")

SECRET = "peer-bench-root-key-0123456789abcdef"  # >= 32 bytes, like Portcullis requires


# --- mcp-auth-guard ----------------------------------------------------------------------


def guard_policy(rule_set):
    """The rule set as an auth-guard policy: one rule per spec rule, same order, same
    priority (auth-guard sorts by priority, stably, then takes the first match)."""
    rules = []
    for r in rule_set["rules"]:
        rule = {"name": r["name"], "effect": r["effect"], "tools": {"names": [r["tool"]]}}
        if r["roles"]:
            rule["agents"] = {"roles": r["roles"]}
        rules.append(rule)
    return PolicyConfig.model_validate(
        {"name": "peers", "default_effect": rule_set["default_effect"], "rules": rules}
    )


def guard_identity(case):
    return AuthContext(
        user_id=case["user"], roles=case["roles"], authenticated=True,
        auth_method=AuthMethod.HEADER_BASED,
    )


def guard_resource(tool):
    return ResourceContext(
        resource_type="tools", resource=ToolResource(name=tool), action="call",
        method="tools/call",
    )


def bench_guard(rule_set, rows):
    engine = GuardEngine([guard_policy(rule_set)])
    for case in rule_set["cases"]:
        who, what = guard_identity(case), guard_resource(case["tool"])
        decision = run_sync(engine.evaluate(who, what))
        assert decision.allowed == (case["expect"] == "allow"), (rule_set["n"], case, decision)
        assert decision.matched_rule == case["rule"], (rule_set["n"], case, decision)
        if case["position"] is not None:
            assert decision.evaluated_rules == case["position"], (case, decision)
        m = median_us(lambda: run_sync(engine.evaluate(who, what)))
        rows.append(row("mcp-auth-guard", "role + tool", case["case"], rule_set["n"], m))


# --- mcp-macaroon-middleware ---------------------------------------------------------------


def macaroon_for(lines, user="ann"):
    """What the middleware's `_create_base_macaroon` builds: one caveat per policy line."""
    m = Macaroon(location="mcp_server", identifier=f"user_{user}", key=SECRET)
    for line in lines:
        m.add_first_party_caveat(line)
    return m


def macaroon_engine(engine_class=MacaroonEngine):
    return engine_class(CaveatValidator(), elicit_expiry=3600, secret_key=SECRET)


class ParamsFixedEngine(MacaroonEngine):
    """mcp-macaroon-middleware 2.0.0 calls every enforcer as
    `enforcer(caveat=..., context=..., result=..., macaroon=..., *caveat.params)`: a caveat
    with parameters puts them in the positional slots of `caveat`, `context`, ... and the call
    fails with a TypeError, which the engine turns into a policy violation. So field_access
    redaction and every parameterized custom enforcer deny instead of working. This subclass
    is the one-line fix (parameters after the positional arguments), used only for the rows
    whose caveats have parameters, so they measure what the seed would cost if it worked."""

    def _execute_enforcer(self, caveat, context, result, macaroon):
        enforcer = get_enforcer(caveat.policy_name)
        if enforcer:
            logger.debug(f"Executing enforcer for policy '{caveat.policy_name}' with caveat: {caveat.raw}")
            return enforcer(caveat, context, result, macaroon, *caveat.params)
        logger.warning(f"No enforcer registered for policy '{caveat.policy_name}'. Skipping caveat: {caveat.raw}")
        return []


def assert_params_bug(lines, tool, phase, **kwargs):
    """The unfixed engine denies a call whose caveat has parameters (see ParamsFixedEngine); if a
    release fixes this, the bench should drop the fix, so it stops here."""
    try:
        run_sync(macaroon_engine().enforce_policies(
            macaroon=macaroon_for(lines), tool_name=tool, phase=phase, user_id="ann", **kwargs))
    except PolicyViolationError as e:
        assert "got multiple values for argument 'caveat'" in str(e), e
        return
    raise AssertionError("mcp-macaroon-middleware no longer fails caveats with parameters")


def macaroon_decide(engine, m, tool, context=None):
    """'allow' or 'deny' from one before-phase enforcement."""
    try:
        run_sync(engine.enforce_policies(
            macaroon=m, tool_name=tool, phase=ExecutionPhase.BEFORE, context=context,
            user_id="ann"))
        return "allow"
    except PolicyViolationError:
        return "deny"


def bench_macaroon(rule_set, rows):
    engine = macaroon_engine()
    m = macaroon_for(rule_set["compact"])
    assert len(m.caveats) == rule_set["n"]
    serialized = m.serialize()
    for case in rule_set["cases"]:
        if case["case"] not in rule_set["compact_cases"]:
            continue
        tool = case["tool"]
        assert macaroon_decide(engine, m, tool) == case["expect"], (rule_set["n"], case)
        assert len(m.caveats) == rule_set["n"], "enforcement must not grow the macaroon"
        mm = median_us(lambda: macaroon_decide(engine, m, tool))
        rows.append(row("mcp-macaroon-middleware", "compact (no roles)", case["case"],
                        rule_set["n"], mm))
        if case["case"] == "allow":
            # What the middleware adds around the engine on every call: the cached macaroon
            # is deserialized, and serialized again after the phase.
            def with_serde():
                mac = Macaroon.deserialize(serialized)
                macaroon_decide(engine, mac, tool)
                return mac.serialize()

            mm = median_us(with_serde)
            rows.append(row("mcp-macaroon-middleware", "compact, + (de)serialize",
                            case["case"], rule_set["n"], mm))


# A Python custom enforcer doing what the Rust `business_hours` WASM enforcer does, registered
# the seed's way. The clock comes from the context so both engines judge the same instant.
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@policy_enforcer("business_hours")
def business_hours(caveat, context, result, macaroon, *params):
    window, days, tz = "0000-2400", "mon-sun", "UTC"
    for p in params:
        if p.startswith("tz="):
            tz = p[3:]
        elif p[:1].isdigit():
            window = p
        else:
            days = p
    start, end = window.split("-")
    first, last = days.split("-")
    now = datetime.datetime.fromtimestamp(context.now_ms / 1000, zoneinfo.ZoneInfo(tz))
    day_ok = DAYS.index(first) <= now.weekday() <= DAYS.index(last)
    hhmm = now.strftime("%H%M")
    if not (day_ok and start <= hhmm < end):
        raise PolicyViolationError(f"outside business hours ({window} {days} {tz})")
    return []


def bench_macaroon_hours(rule_set, rows):
    hours = rule_set["hours"]
    lines = rule_set["compact"] + [hours["compact"]]
    inside = SimpleNamespace(now_ms=hours["inside_ms"])
    outside = SimpleNamespace(now_ms=hours["outside_ms"])
    assert_params_bug(lines, hours["tool"], ExecutionPhase.BEFORE, context=inside)
    engine = macaroon_engine(ParamsFixedEngine)
    m = macaroon_for(lines)
    assert macaroon_decide(engine, m, hours["tool"], inside) == "allow"
    assert macaroon_decide(engine, m, hours["tool"], outside) == "deny"
    mm = median_us(lambda: macaroon_decide(engine, m, hours["tool"], inside))
    rows.append(row("mcp-macaroon-middleware", "compact + Python business_hours (fixed)",
                    "allow", rule_set["n"], mm))


def bench_macaroon_redaction(spec, rows):
    red = spec["redaction"]
    engine = macaroon_engine(ParamsFixedEngine)
    m = macaroon_for(red["compact"])
    for label, text in red["documents"].items():
        def fresh():
            return ToolResult(content=[TextContent(type="text", text=text)])

        assert_params_bug(red["compact"], red["tool"], ExecutionPhase.AFTER, result=fresh())

        def redact(result):
            run_sync(engine.enforce_policies(
                macaroon=m, tool_name=red["tool"], phase=ExecutionPhase.AFTER,
                result=result, user_id="ann"))
            return result

        out = json.loads(redact(fresh()).content[0].text)
        doc = out[0] if isinstance(out, list) else out  # the seed writes a one-item list back
        for field in red["fields"]:
            assert doc[field] == "REDACTED", (label, field, doc[field])
        assert doc["items"] == json.loads(text)["items"]
        mm = median_us(redact, setup=fresh)
        rows.append(row("mcp-macaroon-middleware", "JSON text item (fixed)", f"redact 3 fields, {label}",
                        None, mm))


def row(engine, form, case, n, measured):
    return {"engine": engine, "form": form, "case": case, "n": n, **measured}


def run(spec):
    rows = []
    for rule_set in spec["rule_sets"]:
        bench_guard(rule_set, rows)
        bench_macaroon(rule_set, rows)
        bench_macaroon_hours(rule_set, rows)
    bench_macaroon_redaction(spec, rows)
    return rows


__all__ = ["run", "guard_policy", "macaroon_for", "SECRET", "mcp_auth_guard"]
