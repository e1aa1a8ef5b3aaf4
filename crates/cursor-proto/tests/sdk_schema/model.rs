//! The schema model both sides are reduced to: messages, fields, enums and service methods,
//! keyed by fully qualified name (`agent.v1.Outer.Inner`, no leading dot).

use std::collections::BTreeMap;
use std::fmt;

/// A field's value type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ty {
    /// A scalar, by its `FieldDescriptorProto.Type` number (9 string, 12 bytes, ...).
    Scalar(i32),
    /// A message, by full name.
    Message(String),
    /// An enum, by full name.
    Enum(String),
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scalar(n) => f.write_str(scalar_name(*n)),
            Self::Message(m) => write!(f, "message {m}"),
            Self::Enum(e) => write!(f, "enum {e}"),
        }
    }
}

/// protobuf's name of a `FieldDescriptorProto.Type` scalar.
pub(crate) fn scalar_name(n: i32) -> &'static str {
    match n {
        1 => "double",
        2 => "float",
        3 => "int64",
        4 => "uint64",
        5 => "int32",
        6 => "fixed64",
        7 => "fixed32",
        8 => "bool",
        9 => "string",
        12 => "bytes",
        13 => "uint32",
        15 => "sfixed32",
        16 => "sfixed64",
        17 => "sint32",
        18 => "sint64",
        _ => "unknown-scalar",
    }
}

/// Cardinality of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    /// Implicit presence (or a message field without `optional`).
    Plain,
    /// proto3 `optional`.
    Optional,
    /// `repeated`, not a map.
    Repeated,
    /// `map<K, V>`: the key's scalar type; the field's `Ty` is the value type.
    Map(i32),
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain => f.write_str("singular"),
            Self::Optional => f.write_str("optional"),
            Self::Repeated => f.write_str("repeated"),
            Self::Map(k) => write!(f, "map<{}, _>", scalar_name(*k)),
        }
    }
}

/// One field of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) number: i32,
    pub(crate) name: String,
    pub(crate) ty: Ty,
    pub(crate) label: Label,
    /// The (real, not synthetic) oneof the field belongs to.
    pub(crate) oneof: Option<String>,
}

/// A message: its fields in declaration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) fields: Vec<Field>,
}

impl Message {
    pub(crate) fn field(&self, number: i32) -> Option<&Field> {
        self.fields.iter().find(|f| f.number == number)
    }
}

/// An enum: (number, full value name) in declaration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Enum {
    pub(crate) values: Vec<(i32, String)>,
}

/// How a method streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    BiDiStreaming,
}

/// One service method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Method {
    pub(crate) name: String,
    pub(crate) input: String,
    pub(crate) output: String,
    pub(crate) kind: Kind,
}

/// A service: its methods in declaration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Service {
    pub(crate) methods: Vec<Method>,
}

/// Everything one side declares.
#[derive(Debug, Default)]
pub(crate) struct Schema {
    pub(crate) messages: BTreeMap<String, Message>,
    pub(crate) enums: BTreeMap<String, Enum>,
    pub(crate) services: BTreeMap<String, Service>,
}

impl Schema {
    /// Adds `other` into `self`. A name both declare differently is a conflict, described in
    /// the returned lines (the first declaration is kept).
    pub(crate) fn merge(&mut self, other: Self, what: &str) -> Vec<String> {
        let mut conflicts = Vec::new();
        merge_map(
            &mut self.messages,
            other.messages,
            "message",
            what,
            &mut conflicts,
        );
        merge_map(&mut self.enums, other.enums, "enum", what, &mut conflicts);
        merge_map(
            &mut self.services,
            other.services,
            "service",
            what,
            &mut conflicts,
        );
        conflicts
    }
}

fn merge_map<T: PartialEq + fmt::Debug>(
    into: &mut BTreeMap<String, T>,
    from: BTreeMap<String, T>,
    kind: &str,
    what: &str,
    conflicts: &mut Vec<String>,
) {
    for (name, item) in from {
        match into.get(&name) {
            None => {
                into.insert(name, item);
            }
            Some(existing) if *existing == item => {}
            Some(existing) => conflicts.push(format!(
                "SDK {kind} {name} declared differently in {what}: {existing:?} vs {item:?}"
            )),
        }
    }
}
