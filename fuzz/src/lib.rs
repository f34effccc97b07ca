//! Checks shared by the fuzz targets in `fuzz_targets/`: what every
//! event must satisfy whatever input produced it.

use serde_json::Value;
use watchdog::fuzzing::events::{kind_schema, Event, FieldType};

/// An event's JSON is what `scan` prints and what rules are checked
/// against (`SCHEMA` in src/events.rs): every member must be a field of
/// its kind with the declared type, and `null` only where allowed. A
/// member the schema does not know would be invisible to `--check-config`
/// and silently never match a rule.
pub fn check_event(ev: &Event) {
    let json = ev.to_json();
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {json}"));
    let kind = obj["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("no kind: {json}"));
    let schema = kind_schema(kind).unwrap_or_else(|| panic!("kind {kind} not in SCHEMA: {json}"));
    for (name, value) in obj {
        if name == "kind" {
            continue;
        }
        let field = schema
            .field(name)
            .unwrap_or_else(|| panic!("{kind}: member {name} not in SCHEMA: {json}"));
        let ok = match (value, field.ty) {
            (Value::Null, _) => field.nullable,
            (Value::String(_), FieldType::Str) => true,
            (Value::Number(n), FieldType::Int) => n.is_i64() || n.is_u64(),
            (Value::Number(_), FieldType::Float) => true,
            (Value::Bool(_), FieldType::Bool) => true,
            // Lists (a crash's call frames) hold text.
            (Value::Array(items), FieldType::List) => items.iter().all(Value::is_string),
            _ => false,
        };
        assert!(
            ok,
            "{kind}: member {name} = {value} is not {:?}: {json}",
            field.ty
        );
    }
}
