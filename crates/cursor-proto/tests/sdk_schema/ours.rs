//! Our schema, read from `cursor_proto::FILE_DESCRIPTOR_SET` into the common model.

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label as PLabel, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

use super::model::{Enum, Field, Kind, Label, Message, Method, Schema, Service, Ty};

/// Our packages (the well-known types in the set are not ours to compare).
fn ours(package: &str) -> bool {
    package == "agent.v1" || package == "aiserver.v1"
}

fn trim(type_name: &str) -> String {
    type_name.trim_start_matches('.').to_owned()
}

/// Every message, enum and service of our packages.
pub(crate) fn schema() -> Schema {
    let set = FileDescriptorSet::decode(cursor_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set decodes");
    let mut schema = Schema::default();
    // Map entry types by full name, to read maps back as (key, value).
    let mut entries = std::collections::BTreeMap::new();
    for file in &set.file {
        for m in &file.message_type {
            collect_entries(&format!("{}.", file.package()), m, &mut entries);
        }
    }
    for file in set.file.iter().filter(|f| ours(f.package())) {
        let prefix = format!("{}.", file.package());
        for m in &file.message_type {
            add_message(&prefix, m, &entries, &mut schema);
        }
        for e in &file.enum_type {
            add_enum(&prefix, e, &mut schema);
        }
        for s in &file.service {
            let methods = s
                .method
                .iter()
                .map(|m| Method {
                    name: m.name().to_owned(),
                    input: trim(m.input_type()),
                    output: trim(m.output_type()),
                    kind: match (m.client_streaming(), m.server_streaming()) {
                        (false, false) => Kind::Unary,
                        (false, true) => Kind::ServerStreaming,
                        (true, false) => Kind::ClientStreaming,
                        (true, true) => Kind::BiDiStreaming,
                    },
                })
                .collect();
            schema
                .services
                .insert(format!("{prefix}{}", s.name()), Service { methods });
        }
    }
    schema
}

fn collect_entries<'a>(
    prefix: &str,
    m: &'a DescriptorProto,
    out: &mut std::collections::BTreeMap<String, &'a DescriptorProto>,
) {
    let name = format!("{prefix}{}", m.name());
    if m.options.as_ref().is_some_and(|o| o.map_entry()) {
        out.insert(name.clone(), m);
    }
    for n in &m.nested_type {
        collect_entries(&format!("{name}."), n, out);
    }
}

fn ty_of(f: &prost_types::FieldDescriptorProto) -> Ty {
    match f.r#type() {
        Type::Message | Type::Group => Ty::Message(trim(f.type_name())),
        Type::Enum => Ty::Enum(trim(f.type_name())),
        t => Ty::Scalar(t as i32),
    }
}

fn add_message(
    prefix: &str,
    m: &DescriptorProto,
    entries: &std::collections::BTreeMap<String, &DescriptorProto>,
    schema: &mut Schema,
) {
    if m.options.as_ref().is_some_and(|o| o.map_entry()) {
        return;
    }
    let name = format!("{prefix}{}", m.name());
    let mut fields = Vec::new();
    for f in &m.field {
        let mut ty = ty_of(f);
        let label = if f.label() == PLabel::Repeated {
            match &ty {
                Ty::Message(entry) if entries.contains_key(entry) => {
                    let entry = entries[entry];
                    let key = entry.field.iter().find(|f| f.number() == 1).map(ty_of);
                    let value = entry.field.iter().find(|f| f.number() == 2).map(ty_of);
                    match (key, value) {
                        (Some(Ty::Scalar(k)), Some(v)) => {
                            ty = v;
                            Label::Map(k)
                        }
                        _ => panic!("malformed map entry {entry:?}"),
                    }
                }
                _ => Label::Repeated,
            }
        } else if f.proto3_optional() {
            Label::Optional
        } else {
            Label::Plain
        };
        let oneof = match (f.oneof_index, f.proto3_optional()) {
            (Some(i), false) => Some(m.oneof_decl[i as usize].name().to_owned()),
            _ => None,
        };
        fields.push(Field {
            number: f.number(),
            name: f.name().to_owned(),
            ty,
            label,
            oneof,
        });
    }
    schema.messages.insert(name.clone(), Message { fields });
    let nested = format!("{name}.");
    for n in &m.nested_type {
        add_message(&nested, n, entries, schema);
    }
    for e in &m.enum_type {
        add_enum(&nested, e, schema);
    }
}

fn add_enum(prefix: &str, e: &prost_types::EnumDescriptorProto, schema: &mut Schema) {
    let values = e
        .value
        .iter()
        .map(|v| (v.number(), v.name().to_owned()))
        .collect();
    schema
        .enums
        .insert(format!("{prefix}{}", e.name()), Enum { values });
}
