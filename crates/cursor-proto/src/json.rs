//! Conversion between JSON ([`serde_json::Value`]) and `google.protobuf.Value`
//! ([`prost_types::Value`]), the type Cursor's protocol uses for MCP tool arguments
//! (`McpArgs.args`) and tool input schemas (`McpToolDefinition.input_schema`).
//!
//! Follows the protobuf JSON mapping of `Value`, with three deliberate choices:
//!
//! * **Numbers are doubles.** `google.protobuf.Value` has only `number_value` (an IEEE double),
//!   so a JSON integer beyond ±2^53 loses precision on the way in, as in JavaScript. On the way
//!   out an integral double within ±2^53 is written as a JSON integer (`3`, not `3.0`), which is
//!   what tools reading arguments expect; `-0.0` stays `-0.0`.
//! * **Non-finite numbers become `null`.** NaN and ±infinity have no JSON form (the protobuf
//!   JSON mapping makes them an error for `Value`); a peer can still put them on the wire, and
//!   one bad number should not fail a whole tool call, so [`value_to_json`] writes `null`.
//!   JSON never holds them, so [`value_from_json`] never produces them.
//! * **Nesting is bounded.** Both directions recurse, and a `Value` decoded from the wire or a
//!   `serde_json::Value` built in code can nest arbitrarily deep. Anything nested more than
//!   [`MAX_DEPTH`] containers deep is replaced by `null` instead of recursing further, so the
//!   stack use is bounded whatever the input. (`serde_json`'s parser stops at 128 levels and
//!   prost's decoder at 100, so realistic input is far below the cut.)
//!
//! A `Value` whose `kind` is unset, or any `NullValue`, reads as `null`.
//!
//! # Example
//!
//! ```
//! use cursor_proto::json::{fields_from_json, fields_to_json, value_from_json, value_to_json};
//! use serde_json::json;
//!
//! let args = json!({"path": "src/lib.rs", "lines": [1, 20], "recursive": false});
//! let value = value_from_json(&args);
//! assert_eq!(value_to_json(&value), args);
//!
//! // MCP tool arguments travel as a map of fields.
//! let fields = fields_from_json(args.as_object().unwrap());
//! assert_eq!(fields.len(), 3);
//! assert_eq!(serde_json::Value::Object(fields_to_json(&fields)), args);
//! ```

use std::collections::HashMap;

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use serde_json::{Map, Number};

/// How many containers (lists and structs) deep a value may nest; deeper values become `null`.
pub const MAX_DEPTH: usize = 64;

/// 2^53: every integer up to this magnitude is exactly representable as a double.
const EXACT_INT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Converts JSON to a `google.protobuf.Value` (numbers become doubles; see the module docs).
pub fn value_from_json(json: &serde_json::Value) -> Value {
    from_json(json, 0)
}

/// Converts a `google.protobuf.Value` to JSON (non-finite numbers become `null`; see the module
/// docs).
pub fn value_to_json(value: &Value) -> serde_json::Value {
    to_json(value, 0)
}

/// Converts a JSON object to a `google.protobuf.Struct`.
pub fn struct_from_json(object: &Map<String, serde_json::Value>) -> Struct {
    // The struct is the outermost container, so its fields sit one level down.
    Struct {
        fields: fields_at(object, 1),
    }
}

/// Converts a `google.protobuf.Struct` to a JSON object (keys in sorted order).
pub fn struct_to_json(value: &Struct) -> Map<String, serde_json::Value> {
    fields_to_json_at(&value.fields, 1)
}

/// Converts a JSON object to the field map of a `Struct` (the shape of `McpArgs.args`).
pub fn fields_from_json(object: &Map<String, serde_json::Value>) -> HashMap<String, Value> {
    fields_at(object, 1)
}

/// Converts a `Struct`'s field map (the shape of `McpArgs.args`) to a JSON object. Keys are
/// inserted in sorted order, so the serialised text is deterministic even when `serde_json`'s
/// `preserve_order` feature is on.
pub fn fields_to_json(fields: &HashMap<String, Value>) -> Map<String, serde_json::Value> {
    fields_to_json_at(fields, 1)
}

/// Parses JSON text into a `Struct`'s field map: `None` when the text is not JSON or not an
/// object (MCP arguments are always an object).
pub fn fields_from_json_str(text: &str) -> Option<HashMap<String, Value>> {
    match serde_json::from_str::<serde_json::Value>(text).ok()? {
        serde_json::Value::Object(object) => Some(fields_from_json(&object)),
        _ => None,
    }
}

fn null() -> Kind {
    Kind::NullValue(prost_types::NullValue::NullValue as i32)
}

fn from_json(json: &serde_json::Value, depth: usize) -> Value {
    let kind = match json {
        serde_json::Value::Null => null(),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        // Always `Some` and finite for serde_json's own numbers; with `arbitrary_precision` an
        // out-of-range literal could be neither, and then there is no number to keep.
        serde_json::Value::Number(n) => match n.as_f64().filter(|f| f.is_finite()) {
            Some(f) => Kind::NumberValue(f),
            None => null(),
        },
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        _ if depth >= MAX_DEPTH => null(),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(|v| from_json(v, depth + 1)).collect(),
        }),
        serde_json::Value::Object(object) => Kind::StructValue(Struct {
            fields: fields_at(object, depth + 1),
        }),
    };
    Value { kind: Some(kind) }
}

/// `object`'s members converted at `depth`, into whichever map the caller needs (`Struct` has a
/// `BTreeMap`, `McpArgs.args` a `HashMap`).
fn fields_at<C>(object: &Map<String, serde_json::Value>, depth: usize) -> C
where
    C: FromIterator<(String, Value)>,
{
    object
        .iter()
        .map(|(k, v)| (k.clone(), from_json(v, depth)))
        .collect()
}

fn to_json(value: &Value, depth: usize) -> serde_json::Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(_) if depth >= MAX_DEPTH => serde_json::Value::Null,
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.iter().map(|v| to_json(v, depth + 1)).collect())
        }
        Some(Kind::StructValue(s)) => {
            serde_json::Value::Object(fields_to_json_at(&s.fields, depth + 1))
        }
    }
}

/// Fields converted at `depth`, inserted in key order.
fn fields_to_json_at<'a, I>(fields: I, depth: usize) -> Map<String, serde_json::Value>
where
    I: IntoIterator<Item = (&'a String, &'a Value)>,
{
    let mut sorted: Vec<(&String, &Value)> = fields.into_iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    sorted
        .into_iter()
        .map(|(k, v)| (k.clone(), to_json(v, depth)))
        .collect()
}

fn number(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() <= EXACT_INT_LIMIT && !(n == 0.0 && n.is_sign_negative()) {
        // Exact: an integral |n| <= 2^53 is well inside i64.
        return serde_json::Value::from(n as i64);
    }
    // `from_f64` is `None` exactly for NaN and the infinities.
    Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(n: f64) -> Value {
        Value {
            kind: Some(Kind::NumberValue(n)),
        }
    }

    /// `levels` lists nested around `leaf`, as proto and as JSON.
    fn nested(levels: usize, leaf: serde_json::Value) -> serde_json::Value {
        (0..levels).fold(leaf, |v, _| json!([v]))
    }

    fn depth_of(json: &serde_json::Value) -> usize {
        let mut depth = 0;
        let mut cur = json;
        while let Some(inner) = cur.as_array().and_then(|a| a.first()) {
            depth += 1;
            cur = inner;
        }
        depth
    }

    #[test]
    fn round_trips_every_kind() {
        let j = json!({
            "null": null, "t": true, "f": false, "int": -3, "big": 9_007_199_254_740_992_u64,
            "float": 2.5, "tiny": 1e-300, "s": "Đ \u{1F600} \"q\"", "empty_s": "",
            "list": [1, "x", null, [], {}], "obj": {"a": {"b": [true]}}, "empty": {}
        });
        let v = value_from_json(&j);
        assert_eq!(value_to_json(&v), j);
        // And back again: proto -> JSON -> proto is the identity too.
        assert_eq!(value_from_json(&value_to_json(&v)), v);
        let object = j.as_object().unwrap();
        assert_eq!(&struct_to_json(&struct_from_json(object)), object);
        assert_eq!(&fields_to_json(&fields_from_json(object)), object);
    }

    #[test]
    fn numbers() {
        assert_eq!(value_to_json(&num(3.0)), json!(3));
        assert_eq!(value_to_json(&num(3.0)).to_string(), "3");
        assert_eq!(value_to_json(&num(-0.5)), json!(-0.5));
        assert_eq!(value_to_json(&num(-0.0)).to_string(), "-0.0");
        assert_eq!(value_to_json(&num(0.0)).to_string(), "0");
        // 2^53 is still an integer; 2^53 * 2 is written as a double.
        assert_eq!(
            value_to_json(&num(EXACT_INT_LIMIT)),
            json!(9_007_199_254_740_992_i64)
        );
        assert!(value_to_json(&num(EXACT_INT_LIMIT * 2.0)).is_f64());
        assert!(value_to_json(&num(1e300)).is_f64());
        // Beyond 2^53 a JSON integer loses precision (a double has 53 bits).
        let v = value_from_json(&json!(9_007_199_254_740_993_u64));
        assert_eq!(v.kind, Some(Kind::NumberValue(EXACT_INT_LIMIT)));
        let v = value_from_json(&json!(u64::MAX));
        assert_eq!(
            v.kind,
            Some(Kind::NumberValue(18_446_744_073_709_551_615.0))
        );
    }

    #[test]
    fn non_finite_numbers_become_null() {
        for n in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(value_to_json(&num(n)), serde_json::Value::Null, "{n}");
        }
        let list = Value {
            kind: Some(Kind::ListValue(ListValue {
                values: vec![num(1.0), num(f64::NAN), num(2.5)],
            })),
        };
        assert_eq!(value_to_json(&list), json!([1, null, 2.5]));
    }

    #[test]
    fn unset_and_odd_nulls_read_as_null() {
        assert_eq!(
            value_to_json(&Value { kind: None }),
            serde_json::Value::Null
        );
        let odd = Value {
            kind: Some(Kind::NullValue(7)),
        };
        assert_eq!(value_to_json(&odd), serde_json::Value::Null);
        assert_eq!(value_from_json(&serde_json::Value::Null).kind, Some(null()));
    }

    #[test]
    fn nesting_up_to_the_limit_is_kept() {
        let j = nested(MAX_DEPTH, json!("leaf"));
        let back = value_to_json(&value_from_json(&j));
        assert_eq!(back, j);
        assert_eq!(depth_of(&back), MAX_DEPTH);
    }

    #[test]
    fn deeper_nesting_is_cut_to_null_both_ways() {
        // JSON -> proto: the container at depth MAX_DEPTH becomes null.
        let j = nested(MAX_DEPTH + 1, json!("leaf"));
        let back = value_to_json(&value_from_json(&j));
        assert_eq!(back, nested(MAX_DEPTH, serde_json::Value::Null));

        // proto -> JSON, far deeper than serde_json or prost would ever produce.
        let mut v = num(1.0);
        for _ in 0..10_000 {
            v = Value {
                kind: Some(Kind::ListValue(ListValue { values: vec![v] })),
            };
        }
        let j = value_to_json(&v);
        assert_eq!(depth_of(&j), MAX_DEPTH);
        assert_eq!(j, nested(MAX_DEPTH, serde_json::Value::Null));
        // Dropping 10 000 nested boxes recurses in prost's own Drop; unwrap level by level
        // instead so the test's stack use is bounded too.
        let mut cur = Some(v);
        while let Some(Value {
            kind: Some(Kind::ListValue(mut l)),
        }) = cur
        {
            cur = l.values.pop();
        }

        // Structs count as containers like lists.
        let s = (0..MAX_DEPTH + 1).fold(json!(1), |v, _| json!({"k": v}));
        let back = value_to_json(&value_from_json(&s));
        let expect = (0..MAX_DEPTH).fold(serde_json::Value::Null, |v, _| json!({"k": v}));
        assert_eq!(back, expect);
    }

    #[test]
    fn field_maps_and_text() {
        let fields = fields_from_json_str(r#"{"b": 2, "a": "x", "c": {"d": [1.5]}}"#).unwrap();
        assert_eq!(fields.len(), 3);
        let text = serde_json::Value::Object(fields_to_json(&fields)).to_string();
        assert_eq!(text, r#"{"a":"x","b":2,"c":{"d":[1.5]}}"#, "sorted keys");
        for not_object in ["", "[1]", "3", "null", "{", r#""s""#] {
            assert_eq!(fields_from_json_str(not_object), None, "{not_object:?}");
        }
        assert_eq!(fields_from_json_str("{}"), Some(HashMap::new()));
    }
}
