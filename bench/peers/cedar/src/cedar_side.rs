//! Cedar (`cedar-policy`) on the spec's rule sets: one Cedar policy per spec rule, with the
//! spec rule's name as its policy id; callers are `User` entities whose parents are their
//! `Role`s; a tool is a `Tool` resource; the action is `Action::"call"`. Cedar denies when no
//! policy permits and a forbid beats any permit, as the spec's rule set says.

use std::collections::HashSet;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityUid, Policy, PolicyId, PolicySet,
    Request,
};

use crate::harness::{Row, median_us};
use crate::spec::{Case, Rule, RuleSet};

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_str(&format!("{ty}::{}", serde_json::to_string(id).unwrap()))
        .expect("valid entity uid")
}

/// The Cedar text of one spec rule.
pub fn policy_text(r: &Rule) -> String {
    let effect = match r.effect.as_str() {
        "allow" => "permit",
        "deny" => "forbid",
        other => panic!("unexpected effect {other}"),
    };
    let principal = match r.roles.as_slice() {
        [] => "principal".to_string(),
        [role] => format!("principal in {}", uid("Role", role)),
        more => panic!("one role per rule in this bench, got {more:?}"),
    };
    format!(
        "{effect} ({principal}, action == Action::\"call\", resource == {});",
        uid("Tool", &r.tool)
    )
}

fn policies(set: &RuleSet) -> PolicySet {
    let mut ps = PolicySet::new();
    for r in &set.rules {
        let p = Policy::parse(Some(PolicyId::new(&r.name)), policy_text(r)).expect("policy parses");
        ps.add(p).expect("unique policy ids");
    }
    ps
}

/// Every caller of the cases, each a member of its roles.
fn entities(cases: &[Case]) -> Entities {
    let mut users = Vec::new();
    let mut roles = HashSet::new();
    for c in cases {
        let parents: HashSet<EntityUid> = c.roles.iter().map(|r| uid("Role", r)).collect();
        roles.extend(parents.iter().cloned());
        let user = Entity::new_no_attrs(uid("User", &c.user), parents);
        if !users.iter().any(|u: &Entity| u.uid() == user.uid()) {
            users.push(user);
        }
    }
    let roles = roles
        .into_iter()
        .map(|r| Entity::new_no_attrs(r, HashSet::new()));
    Entities::from_entities(users.into_iter().chain(roles), None).expect("entities")
}

pub fn decisions(set: &RuleSet, rows: &mut Vec<Row>) {
    let ps = policies(set);
    let es = entities(&set.cases);
    let authorizer = Authorizer::new();
    for case in &set.cases {
        let req = Request::new(
            uid("User", &case.user),
            uid("Action", "call"),
            uid("Tool", &case.tool),
            Context::empty(),
            None,
        )
        .expect("request");
        let r = authorizer.is_authorized(&req, &ps, &es);
        let expected = if case.expect == "allow" {
            Decision::Allow
        } else {
            Decision::Deny
        };
        assert_eq!(r.decision(), expected, "cedar {}: {r:?}", case.case);
        let reason: Vec<String> = r.diagnostics().reason().map(|id| id.to_string()).collect();
        assert_eq!(
            reason,
            case.rule.iter().cloned().collect::<Vec<_>>(),
            "{r:?}"
        );
        assert_eq!(r.diagnostics().errors().count(), 0, "{r:?}");
        let m = median_us(|| {
            std::hint::black_box(authorizer.is_authorized(std::hint::black_box(&req), &ps, &es));
        });
        rows.push(Row::new("Cedar", "role + tool", &case.case, set.n, m));
    }
}
