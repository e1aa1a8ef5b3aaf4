//! The published descriptor set agrees with the `paths` constants and the generated types.

use cursor_proto::paths::{self, MethodKind, MethodPath};
use prost::Message;
use prost_types::FileDescriptorSet;

fn set() -> FileDescriptorSet {
    FileDescriptorSet::decode(cursor_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
}

/// Every method declared in our services, as (path, kind).
fn declared_methods() -> Vec<(String, MethodKind)> {
    let mut out = Vec::new();
    for file in set().file {
        for service in &file.service {
            for method in &service.method {
                let kind = match (method.client_streaming(), method.server_streaming()) {
                    (false, false) => MethodKind::Unary,
                    (false, true) => MethodKind::ServerStream,
                    (true, true) => MethodKind::Bidi,
                    (true, false) => panic!("client streaming is not used by Cursor"),
                };
                out.push((
                    format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    kind,
                ));
            }
        }
    }
    out
}

#[test]
fn every_path_constant_is_declared_with_the_same_kind() {
    let declared = declared_methods();
    for m in paths::ALL {
        let found = declared.iter().find(|(p, _)| p == m.path);
        assert_eq!(found.map(|(_, k)| *k), Some(m.kind), "{}", m.path);
    }
}

#[test]
fn every_declared_method_has_a_path_constant() {
    for (path, kind) in declared_methods() {
        assert_eq!(
            MethodPath::find(&path).map(|m| m.kind),
            Some(kind),
            "{path}"
        );
    }
}

#[test]
fn files_come_after_their_dependencies() {
    let set = set();
    let mut seen: Vec<&str> = Vec::new();
    for f in &set.file {
        for d in &f.dependency {
            assert!(
                seen.contains(&d.as_str()),
                "{} before its dependency {d}",
                f.name()
            );
        }
        seen.push(f.name());
    }
    for expected in [
        "agent/v1/agent_service.proto",
        "agent/v1/exec.proto",
        "aiserver/v1/errors.proto",
        "google/protobuf/struct.proto",
    ] {
        assert!(seen.contains(&expected), "{expected} missing");
    }
}

#[test]
fn proto_comments_reach_the_descriptors() {
    // build/comments.rs attaches the .proto comments as SourceCodeInfo (protobuf-parse's pure
    // parser records none); prost-build turns them into the generated docs.
    let set = set();
    let exec = set
        .file
        .iter()
        .find(|f| f.name() == "agent/v1/exec.proto")
        .expect("exec.proto");
    let message_index = exec
        .message_type
        .iter()
        .position(|m| m.name() == "ExecServerMessage")
        .expect("ExecServerMessage") as i32;
    let field_index = exec.message_type[message_index as usize]
        .field
        .iter()
        .position(|f| f.name() == "exec_id")
        .expect("exec_id") as i32;
    let info = exec.source_code_info.as_ref().expect("source info");
    let comment = |path: &[i32]| {
        info.location
            .iter()
            .find(|l| l.path == path)
            .and_then(|l| l.leading_comments.clone())
            .unwrap_or_default()
    };
    assert!(comment(&[4, message_index]).contains("run a tool"));
    assert!(comment(&[4, message_index, 2, field_index]).contains("missing exec_id"));
    // Trailing comments too: enum values marked retired.
    let errors = set
        .file
        .iter()
        .find(|f| f.name() == "aiserver/v1/errors.proto")
        .expect("errors.proto");
    let trailing: Vec<String> = errors
        .source_code_info
        .iter()
        .flat_map(|i| &i.location)
        .filter_map(|l| l.trailing_comments.clone())
        .collect();
    assert_eq!(trailing.iter().filter(|t| t.contains("retired")).count(), 8);
}
