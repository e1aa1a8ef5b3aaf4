//! Properties of `cursor_proto::json` over generated values, and the conversion on real
//! `agent.v1` messages (MCP arguments and tool schemas survive an encode/decode on the wire).
#![cfg(feature = "json")]

use cursor_proto::agent::v1::{McpArgs, McpToolDefinition};
use cursor_proto::json::{
    MAX_DEPTH, fields_from_json, fields_to_json, struct_from_json, struct_to_json, value_from_json,
    value_to_json,
};
use proptest::prelude::*;
use prost::Message;
use serde_json::{Value, json};

/// JSON whose numbers survive the trip through a double unchanged: integers within ±2^53 and
/// finite non-integral doubles.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite, non-integral", |f| f.is_finite()
                && f.fract() != 0.0)
            .prop_map(|f| json!(f)),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Any JSON number serde_json can hold (including integers a double cannot hold exactly).
fn any_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
    ]
}

proptest! {
    #[test]
    fn json_to_proto_to_json_is_the_identity(j in json_value()) {
        let v = value_from_json(&j);
        prop_assert_eq!(value_to_json(&v), j.clone());
        if let Value::Object(object) = &j {
            prop_assert_eq!(&struct_to_json(&struct_from_json(object)), object);
            prop_assert_eq!(&fields_to_json(&fields_from_json(object)), object);
        }
    }

    #[test]
    fn proto_side_is_stable_and_survives_the_wire(j in json_value()) {
        let v = value_from_json(&j);
        prop_assert_eq!(value_from_json(&value_to_json(&v)), v.clone());
        let decoded = prost_types::Value::decode(v.encode_to_vec().as_slice()).unwrap();
        prop_assert_eq!(decoded, v);
    }

    #[test]
    fn every_number_converts_to_the_nearest_double(n in any_number()) {
        let f = n.as_f64().unwrap();
        let back = value_to_json(&value_from_json(&n));
        prop_assert_eq!(back.as_f64(), Some(f));
    }
}

#[test]
fn mcp_args_and_tool_schema_survive_the_wire() {
    let args = json!({"path": "src/main.rs", "range": {"start": 1, "end": 40}, "dry": false});
    let msg = McpArgs {
        name: "read".into(),
        args: fields_from_json(args.as_object().unwrap()),
        ..Default::default()
    };
    let back = McpArgs::decode(msg.encode_to_vec().as_slice()).unwrap();
    assert_eq!(
        Value::Object(fields_to_json(&back.args)).to_string(),
        r#"{"dry":false,"path":"src/main.rs","range":{"end":40,"start":1}}"#
    );

    let schema =
        json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]});
    let tool = McpToolDefinition {
        name: "search".into(),
        input_schema: Some(value_from_json(&schema)),
        ..Default::default()
    };
    let back = McpToolDefinition::decode(tool.encode_to_vec().as_slice()).unwrap();
    assert_eq!(value_to_json(back.input_schema.as_ref().unwrap()), schema);
}

#[test]
fn depth_limit_is_the_documented_one() {
    // A struct's fields sit one level inside it: MAX_DEPTH - 1 more lists keep the leaf.
    let keep = (0..MAX_DEPTH - 1).fold(json!(true), |v, _| json!([v]));
    let object = json!({"k": keep});
    let object = object.as_object().unwrap();
    assert_eq!(&struct_to_json(&struct_from_json(object)), object);
    let cut = json!({"k": json!([keep])});
    let cut = cut.as_object().unwrap();
    let back = struct_to_json(&struct_from_json(cut));
    assert_ne!(&back, cut);
    assert_eq!(
        back["k"],
        (0..MAX_DEPTH - 1).fold(Value::Null, |v, _| json!([v]))
    );
}
