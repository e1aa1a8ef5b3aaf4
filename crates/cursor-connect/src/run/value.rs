//! Conversion between JSON values and `google.protobuf.Value`.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};

/// How deep a JSON value may nest before the rest is cut off (serde_json itself stops at 128).
const MAX_DEPTH: usize = 64;

pub(crate) fn json_to_value(v: &serde_json::Value) -> Value {
    to_value(v, 0)
}

fn to_value(v: &serde_json::Value, depth: usize) -> Value {
    let kind = if depth > MAX_DEPTH {
        Kind::NullValue(0)
    } else {
        match v {
            serde_json::Value::Null => Kind::NullValue(0),
            serde_json::Value::Bool(b) => Kind::BoolValue(*b),
            serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Kind::StringValue(s.clone()),
            serde_json::Value::Array(a) => Kind::ListValue(ListValue {
                values: a.iter().map(|x| to_value(x, depth + 1)).collect(),
            }),
            serde_json::Value::Object(o) => Kind::StructValue(Struct {
                fields: o
                    .iter()
                    .map(|(k, x)| (k.clone(), to_value(x, depth + 1)))
                    .collect(),
            }),
        }
    };
    Value { kind: Some(kind) }
}

pub(crate) fn value_to_json(v: &Value) -> serde_json::Value {
    from_value(v, 0)
}

fn from_value(v: &Value, depth: usize) -> serde_json::Value {
    if depth > MAX_DEPTH {
        return serde_json::Value::Null;
    }
    match &v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.iter().map(|x| from_value(x, depth + 1)).collect())
        }
        Some(Kind::StructValue(s)) => serde_json::Value::Object(
            s.fields
                .iter()
                .map(|(k, x)| (k.clone(), from_value(x, depth + 1)))
                .collect(),
        ),
    }
}

/// Integral doubles come back as JSON integers (`3`, not `3.0`), as JSON tools expect.
fn number(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let j = serde_json::json!({"a": [1, 2.5, "x", null, true], "b": {"c": -3}});
        assert_eq!(value_to_json(&json_to_value(&j)), j);
    }

    #[test]
    fn deep_nesting_is_cut() {
        let mut v = Value {
            kind: Some(Kind::NullValue(0)),
        };
        for _ in 0..200 {
            v = Value {
                kind: Some(Kind::ListValue(ListValue { values: vec![v] })),
            };
        }
        let j = value_to_json(&v);
        assert!(j.to_string().len() < 200);
    }
}
