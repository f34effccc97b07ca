//! Checks shared by the fuzz targets in `fuzz_targets/`: what every
//! event must satisfy whatever input produced it.

use serde_json::Value;
use watchdog::fuzzing::events::{kind_schema, Event, FieldType};
use watchdog::fuzzing::marker::Body;

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

/// Reads the fuzzer's bytes as the parts of a value, one call per part;
/// past the end every part is zero or empty.
pub struct Input<'a> {
    rest: &'a [u8],
    /// Strings up to 23 bytes (one token-sized field) or up to 300 (past
    /// every RFC 5424 header field's limit).
    long: bool,
}

impl<'a> Input<'a> {
    /// Strings of at most 23 bytes.
    pub fn short(rest: &'a [u8]) -> Input<'a> {
        Input { rest, long: false }
    }

    /// Strings of up to 300 bytes.
    pub fn long(rest: &'a [u8]) -> Input<'a> {
        Input { rest, long: true }
    }

    /// What is left of the input.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub fn byte(&mut self) -> u8 {
        let (b, rest) = self
            .rest
            .split_first()
            .map_or((0, &[][..]), |(b, r)| (*b, r));
        self.rest = rest;
        b
    }

    /// Small numbers and extremes alike.
    pub fn num(&mut self) -> u64 {
        match self.byte() % 4 {
            0 => u64::from(self.byte()),
            1 => u64::MAX - u64::from(self.byte()),
            _ => (0..8).fold(0, |n, _| n << 8 | u64::from(self.byte())),
        }
    }

    pub fn bytes(&mut self) -> Vec<u8> {
        let want = if self.long {
            usize::from(self.byte()) + usize::from(self.byte() & 1) * 45
        } else {
            usize::from(self.byte() % 24)
        };
        let (s, rest) = self.rest.split_at(want.min(self.rest.len()));
        self.rest = rest;
        s.to_vec()
    }

    pub fn string(&mut self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

/// A marker body of any kind with any numbers and text.
pub fn marker_body(inp: &mut Input<'_>) -> Body {
    match inp.byte() % 7 {
        0 => {
            let (x, y) = (inp.num(), inp.num());
            Body::Gap {
                from: x.min(y),
                to: x.max(y),
            }
        }
        1 => Body::Reset {
            last: inp.num(),
            seq: inp.num(),
        },
        2 => Body::Incomplete {
            seq: inp.num(),
            got: inp.num(),
            total: inp.num(),
        },
        3 => Body::Cut {
            seq: (inp.byte() & 1 == 1).then(|| inp.num()),
            kept: inp.num(),
            total: (inp.byte() & 1 == 1).then(|| inp.num()),
        },
        4 => Body::KernelDrop { count: inp.num() },
        5 => Body::WriteFailed {
            count: inp.num(),
            since: inp.string(),
        },
        _ => Body::Dropped { count: inp.num() },
    }
}
