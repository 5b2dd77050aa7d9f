//! Output schemas that stay true after redaction.
//!
//! A client validates `structuredContent` against the tool's `outputSchema`. When a field may
//! be redacted, the advertised schema must accept the redacted form: in `replace` mode the
//! field's schema also accepts the string `"[REDACTED]"`; in `remove` mode the field is no
//! longer required (and arrays lose `minItems`). Only the parts a field path can reach are
//! touched; local `$ref`s on the way are inlined so shared definitions stay unchanged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rmcp::model::{JsonObject, Tool};
use serde_json::{Map, Value, json};

use crate::engine::Snapshot;
use crate::paths::{FieldPath, REDACTED, RedactMode, Segment};

/// Output schemas as advertised (widened for redaction), remembered for the current snapshot.
/// rmcp asks the handler for a tool on every HTTP request (to check `Mcp-Param-*` headers), and
/// widening a schema copies it, so doing it once per tool and policy matters.
#[derive(Default)]
pub struct AdvertisedSchemas {
    current: Mutex<Option<Remembered>>,
}

struct Remembered {
    /// Held, so its address cannot be reused by another snapshot while this entry lives.
    snapshot: Arc<Snapshot>,
    /// Tool name -> (the inner server's schema, the advertised one).
    schemas: HashMap<String, (Arc<JsonObject>, Arc<JsonObject>)>,
}

/// Tools whose schemas are remembered at most, per snapshot.
const MAX_REMEMBERED: usize = 4096;

impl AdvertisedSchemas {
    /// Gives `tool` the output schema to advertise under `snapshot`: widened for the fields its
    /// after-phase rules may redact, unchanged when none can.
    pub fn adjust(&self, tool: &mut Tool, snapshot: &Arc<Snapshot>) {
        let Some(original) = tool.output_schema.clone() else {
            return;
        };
        if !snapshot.touches_results(&tool.name, None) {
            return;
        }
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = current
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(&r.snapshot, snapshot));
        if !fresh {
            *current = Some(Remembered {
                snapshot: snapshot.clone(),
                schemas: HashMap::new(),
            });
        }
        let remembered = current.as_mut().expect("just set");
        if let Some((seen, advertised)) = remembered.schemas.get(&*tool.name)
            && (Arc::ptr_eq(seen, &original) || seen == &original)
        {
            tool.output_schema = Some(advertised.clone());
            return;
        }
        let paths = super::visibility::redacted_paths(snapshot, &tool.name);
        let mut copy = (*original).clone();
        let advertised =
            if !paths.is_empty() && adjust(&mut copy, &paths, snapshot.config().redaction) {
                Arc::new(copy)
            } else {
                original.clone()
            };
        if remembered.schemas.len() >= MAX_REMEMBERED {
            remembered.schemas.clear();
        }
        remembered
            .schemas
            .insert(tool.name.to_string(), (original, advertised.clone()));
        tool.output_schema = Some(advertised);
    }
}

/// Most `$ref`s followed along one path, so a recursive schema cannot loop.
const MAX_REF_DEPTH: usize = 16;

/// Adjusts `schema` so results redacted at any of `paths` still validate. Returns true when
/// something changed.
pub fn adjust(schema: &mut Map<String, Value>, paths: &[&FieldPath], mode: RedactMode) -> bool {
    let root = Value::Object(schema.clone());
    let mut node = Value::Object(std::mem::take(schema));
    let mut changed = false;
    for path in paths {
        let segs = path.segments();
        changed |= visit(&mut node, segs, &root, mode, 0);
        // Seed compatibility: a root array applies key paths to each element.
        if matches!(segs.first(), Some(Segment::Key(_)))
            && let Some(items) = node.get_mut("items").filter(|i| i.is_object())
        {
            changed |= visit(items, segs, &root, mode, 0);
        }
    }
    if let Value::Object(m) = node {
        *schema = m;
    }
    changed
}

fn visit(node: &mut Value, segs: &[Segment], root: &Value, mode: RedactMode, refs: usize) -> bool {
    let Some(obj) = node.as_object_mut() else {
        return false;
    };
    // Inline a local $ref so the change stays on this path.
    if let Some(Value::String(r)) = obj.get("$ref")
        && refs < MAX_REF_DEPTH
        && let Some(target) = resolve(root, r)
        && let Value::Object(t) = target.clone()
    {
        obj.remove("$ref");
        for (k, v) in t {
            obj.entry(k).or_insert(v);
        }
        return visit(node, segs, root, mode, refs + 1);
    }
    let mut changed = false;
    for combinator in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = obj.get_mut(combinator) {
            for b in branches.iter_mut() {
                changed |= visit(b, segs, root, mode, refs);
            }
        }
    }
    let Some((first, rest)) = segs.split_first() else {
        return changed | accept_redacted(node, mode);
    };
    let last = rest.is_empty();
    let Some(obj) = node.as_object_mut() else {
        return changed;
    };
    let mut children: Vec<&mut Value> = Vec::new();
    let mut unrequire: Option<Option<String>> = None; // Some(None) = every key
    let mut unmin_items = false;
    match first {
        Segment::Key(k) | Segment::KeyOrIndex(k, _) => {
            let is_array_index = matches!(first, Segment::KeyOrIndex(..));
            if last {
                unrequire = Some(Some(k.clone()));
                unmin_items = is_array_index;
            }
            let (props, items, additional, prefix) = split(obj);
            if let Some(p) = props.and_then(|p| p.get_mut(k)) {
                children.push(p);
            } else if let Some(a) = additional.filter(|a| a.is_object()) {
                children.push(a);
            }
            if is_array_index {
                children.extend(items.filter(|i| i.is_object()));
                children.extend(prefix.into_iter().flatten());
            }
        }
        Segment::Index(_) | Segment::AnyIndex => {
            unmin_items = last;
            let (_, items, _, prefix) = split(obj);
            children.extend(items.filter(|i| i.is_object()));
            children.extend(prefix.into_iter().flatten());
        }
        Segment::AnyKey => {
            if last {
                unrequire = Some(None);
                unmin_items = true;
            }
            let (props, items, additional, prefix) = split(obj);
            children.extend(props.into_iter().flat_map(|p| p.values_mut()));
            children.extend(additional.filter(|a| a.is_object()));
            children.extend(items.filter(|i| i.is_object()));
            children.extend(prefix.into_iter().flatten());
        }
    }
    for child in children {
        changed |= visit(child, rest, root, mode, refs);
    }
    if mode == RedactMode::Remove {
        if let Some(which) = unrequire
            && let Some(Value::Array(req)) = obj.get_mut("required")
        {
            let before = req.len();
            match which {
                Some(k) => req.retain(|r| r.as_str() != Some(k.as_str())),
                None => req.clear(),
            }
            changed |= req.len() != before;
        }
        if unmin_items && obj.remove("minItems").is_some() {
            changed = true;
        }
    }
    changed
}

type Parts<'a> = (
    Option<&'a mut Map<String, Value>>,
    Option<&'a mut Value>,
    Option<&'a mut Value>,
    Option<std::slice::IterMut<'a, Value>>,
);

/// Disjoint mutable borrows of the keys a path can step into.
fn split(obj: &mut Map<String, Value>) -> Parts<'_> {
    let mut props = None;
    let mut items = None;
    let mut additional = None;
    let mut prefix = None;
    for (k, v) in obj.iter_mut() {
        match k.as_str() {
            "properties" => props = v.as_object_mut(),
            "items" => items = Some(v),
            "additionalProperties" => additional = Some(v),
            "prefixItems" => prefix = v.as_array_mut().map(|a| a.iter_mut()),
            _ => {}
        }
    }
    (props, items, additional, prefix)
}

/// In replace mode, lets the leaf also be the string `"[REDACTED]"`.
fn accept_redacted(node: &mut Value, mode: RedactMode) -> bool {
    if mode == RedactMode::Remove {
        return false;
    }
    let Some(obj) = node.as_object() else {
        return false;
    };
    // A plain string schema already accepts it.
    let plain_string = obj.get("type") == Some(&json!("string"))
        && obj
            .keys()
            .all(|k| matches!(k.as_str(), "type" | "title" | "description"));
    if plain_string || obj.is_empty() {
        return false;
    }
    let original = std::mem::take(node);
    *node = json!({"anyOf": [original, {"type": "string", "const": REDACTED}]});
    true
}

/// Resolves a local JSON Pointer `$ref` (`#/$defs/X`, `#/definitions/X`, ...).
fn resolve<'a>(root: &'a Value, r: &str) -> Option<&'a Value> {
    let pointer = r.strip_prefix('#')?;
    root.pointer(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adjusted(schema: Value, paths: &[&str], mode: RedactMode) -> Value {
        let parsed: Vec<FieldPath> = paths.iter().map(|p| FieldPath::parse(p).unwrap()).collect();
        let refs: Vec<&FieldPath> = parsed.iter().collect();
        let Value::Object(mut m) = schema else {
            panic!()
        };
        adjust(&mut m, &refs, mode);
        Value::Object(m)
    }

    #[test]
    fn replace_widens_the_leaf_and_keeps_shared_defs() {
        let schema = json!({
            "type": "object",
            "properties": {
                "temperature": {"type": "number"},
                "user": {"$ref": "#/$defs/User"},
                "other": {"$ref": "#/$defs/User"}
            },
            "required": ["temperature", "user"],
            "$defs": {"User": {"type": "object", "properties": {"ssn": {"type": "string", "pattern": "^[0-9-]+$"}}}}
        });
        let out = adjusted(schema, &["temperature", "user.ssn"], RedactMode::Replace);
        assert_eq!(
            out["properties"]["temperature"]["anyOf"][1]["const"],
            REDACTED
        );
        assert_eq!(
            out["properties"]["user"]["properties"]["ssn"]["anyOf"][1]["const"],
            REDACTED
        );
        assert_eq!(out["properties"]["other"]["$ref"], "#/$defs/User");
        assert_eq!(out["required"], json!(["temperature", "user"]));
    }

    #[test]
    fn remove_unrequires_keys_through_wildcards_and_arrays() {
        let schema = json!({
            "type": "object",
            "properties": {
                "items": {"type": "array", "minItems": 1, "items": {
                    "type": "object",
                    "properties": {"email": {"type": "string"}, "id": {"type": "integer"}},
                    "required": ["email", "id"]
                }}
            },
            "required": ["items"]
        });
        let out = adjusted(schema, &["items[*].email"], RedactMode::Remove);
        assert_eq!(
            out["properties"]["items"]["items"]["required"],
            json!(["id"])
        );
        assert_eq!(out["required"], json!(["items"]));
    }

    #[test]
    fn plain_strings_and_unknown_paths_are_left_alone() {
        let schema = json!({"type": "object", "properties": {"body": {"type": "string"}}});
        let out = adjusted(
            schema.clone(),
            &["body", "nope.deeper"],
            RedactMode::Replace,
        );
        assert_eq!(out, schema);
    }
}
