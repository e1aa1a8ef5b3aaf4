//! Generates the prost types from `proto/` with no protoc: `protobuf-parse` parses the schema in
//! pure-Rust mode, its descriptors are re-read as `prost_types` descriptors, and `prost-build`
//! generates code from that set (`compile_fds`).

use std::path::PathBuf;

#[path = "build/comments.rs"]
mod comments;

use prost::Message as _;
use protobuf::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    // In the workspace the schema is at ../../proto; a packaged crate carries ./proto.
    let root = [manifest.join("proto"), manifest.join("../../proto")]
        .into_iter()
        .find(|p| p.join("agent/v1/agent_service.proto").is_file())
        .ok_or("proto/ directory with agent/v1/agent_service.proto not found")?;
    let root = root.canonicalize()?;

    let mut inputs = Vec::new();
    for package in ["agent/v1", "aiserver/v1"] {
        let dir = root.join(package);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "proto"))
            .collect();
        files.sort();
        for f in &files {
            println!("cargo:rerun-if-changed={}", f.display());
        }
        inputs.extend(files);
    }

    let parsed = protobuf_parse::Parser::new()
        .pure()
        .include(&root)
        .inputs(&inputs)
        .parse_and_typecheck()?;

    // Re-read rust-protobuf descriptors as prost descriptors. The google/protobuf/* files stay
    // in the set: prost-build needs them to resolve types and maps them to prost-types itself.
    let mut docs = comments::Comments::default();
    for f in &inputs {
        docs.scan(&std::fs::read_to_string(f)?);
    }
    let mut set = prost_types::FileDescriptorSet::default();
    for fd in &parsed.file_descriptors {
        let bytes = fd.write_to_bytes()?;
        let mut file = prost_types::FileDescriptorProto::decode(bytes.as_slice())?;
        let package = file.package();
        if package.starts_with("agent.") || package.starts_with("aiserver.") {
            docs.attach(&mut file);
        }
        set.file.push(file);
    }

    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // Only our packages go into the published descriptor set (dependencies first, as
    // descriptor pools expect), plus the well-known types they import.
    std::fs::write(
        out.join("cursor_descriptor_set.bin"),
        ordered_set(&set).encode_to_vec(),
    )?;

    let mut config = prost_build::Config::new();
    config.bytes(["."]);
    // `prost::Name` impls: full names such as "aiserver.v1.ErrorDetails" for Connect error
    // details and descriptor lookups.
    config.enable_type_names();
    config.compile_fds(set)?;
    Ok(())
}

/// The set with every file after its dependencies.
fn ordered_set(set: &prost_types::FileDescriptorSet) -> prost_types::FileDescriptorSet {
    let mut done: Vec<String> = Vec::new();
    let mut ordered = prost_types::FileDescriptorSet::default();
    // Bounded: each pass places at least one file or stops.
    for _ in 0..=set.file.len() {
        let before = ordered.file.len();
        for f in &set.file {
            let name = f.name().to_owned();
            if done.contains(&name) {
                continue;
            }
            if f.dependency.iter().all(|d| done.contains(d)) {
                done.push(name);
                ordered.file.push(f.clone());
            }
        }
        if ordered.file.len() == before {
            break;
        }
    }
    ordered
}
