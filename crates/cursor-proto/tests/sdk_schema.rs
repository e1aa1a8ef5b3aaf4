//! `proto/` against the schema tables of Cursor's official TypeScript SDK (`@cursor/sdk`).
//!
//! The SDK is proprietary: it is installed (never copied) by
//! `crates/cursor-mock/tests/sdk-peer/setup.sh` and only read here, at run time. Its generated
//! protobuf-es code carries a compact field table per message, enum helper calls and service
//! descriptors (see `/work/shared/reference/cursor-sdk-peer.md`, "Its schema is in the
//! bundle"). They are read from the bundled build and from the cjs and esm builds, merged, and
//! every message, field, enum value and service method that our descriptor set declares is
//! compared with the SDK's declaration of the same fully qualified name. The SDK wins: every
//! disagreement fails the test. A summary is printed on every run.

#[path = "sdk_schema/compare.rs"]
mod compare;
#[path = "sdk_schema/js.rs"]
mod js;
#[path = "sdk_schema/model.rs"]
mod model;
#[path = "sdk_schema/ours.rs"]
mod ours;
#[path = "sdk_schema/resolve.rs"]
mod resolve;
#[path = "sdk_schema/table.rs"]
mod table;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use compare::Exception;
use model::{Label, Schema, Ty};

const SETUP: &str = "crates/cursor-mock/tests/sdk-peer/setup.sh";

/// Fields where our schema deliberately differs from the SDK's (the checkpoint pair).
fn exceptions() -> Vec<Exception> {
    vec![
        // The SDK types the run request's state as ConversationStateStructure. We keep the
        // checkpoint as opaque `optional bytes` so it is echoed byte-exact, fields we do not
        // know included (prost would drop them on re-encoding); the wire form is the same
        // length-delimited field. `optional` so an empty state is still sent.
        Exception {
            field: "agent.v1.AgentRunRequest.conversation_state",
            ours: (Ty::Scalar(12), Label::Optional),
        },
        // Its source: the checkpoint the server sends, also ConversationStateStructure in the
        // SDK. Kept as bytes for the same reason (cursor_proto::checkpoint): the client must
        // hold exactly what it will echo; a typed field would lose unknown fields on the way.
        Exception {
            field: "agent.v1.AgentServerMessage.conversation_checkpoint_update",
            ours: (Ty::Scalar(12), Label::Plain),
        },
    ]
}

/// The installed SDK package directory.
fn sdk_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CURSOR_SDK_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/cursor-mock/tests/sdk-peer/node_modules/@cursor/sdk")
}

/// The `.js` files of one build directory, sorted.
fn js_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "js"))
        .collect();
    files.sort();
    files
}

/// Reads one build (`bundled`: flat scopes; `cjs`/`esm`: webpack modules).
fn read_build(dist: &Path, build: &str, errors: &mut Vec<String>) -> Schema {
    let mut schema = Schema::default();
    for path in js_files(&dist.join(build)) {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let scopes = if build == "bundled" {
            vec![js::read_scope(&text, None)]
        } else {
            js::read_modules(&text)
        };
        let name = format!("{build}/{}", path.file_name().unwrap_or_default().display());
        let file = resolve::File::new(&name, &scopes);
        let part = file.schema(errors);
        errors.extend(schema.merge(part, &name));
    }
    schema
}

#[test]
fn proto_agrees_with_the_sdk_schema_tables() {
    let dir = sdk_dir();
    let dist = dir.join("dist");
    assert!(
        dist.join("bundled/index.js").is_file(),
        "@cursor/sdk not found at {} (set CURSOR_SDK_DIR, or install it with `bash {SETUP}`)",
        dir.display()
    );
    let mut errors = Vec::new();
    let mut sdk = Schema::default();
    for build in ["bundled", "cjs", "esm"] {
        let part = read_build(&dist, build, &mut errors);
        assert!(
            part.messages.len() > 1000 && !part.enums.is_empty() && !part.services.is_empty(),
            "{build}: only {} messages, {} enums, {} services read: has the code shape changed?",
            part.messages.len(),
            part.enums.len(),
            part.services.len()
        );
        errors.extend(sdk.merge(part, build));
    }
    let ours = ours::schema();
    let report = compare::compare(&ours, &sdk, &exceptions());
    let summary = report.summary(&sdk);
    // Straight to stderr, past the test harness's capture: the summary is wanted on every run.
    let _ = std::io::stderr().write_all(summary.as_bytes());
    assert!(
        errors.is_empty(),
        "{} problem(s) reading the SDK:\n  {}",
        errors.len(),
        errors.join("\n  ")
    );
    assert!(report.disagreements.is_empty(), "{}", report.failure());
}

/// Parser tests on invented code in the generated shapes (names made up; tables are joined
/// from parts at run time).
mod parser {
    use super::*;

    fn table(parts: &[&str]) -> String {
        parts.join("|")
    }

    fn read_flat(text: &str) -> (Schema, Vec<String>) {
        let scopes = vec![js::read_scope(text, None)];
        let mut errors = Vec::new();
        let schema = resolve::File::new("flat", &scopes).schema(&mut errors);
        (schema, errors)
    }

    #[test]
    fn flat_bundle_messages_enums_and_services() {
        let widget = table(&[
            "widget",
            "1 knob 9",
            "2 part #0?",
            "3 mode #1 pick",
            "4 at #2*",
        ]);
        let part = table(&["widget.part", "1 sizes 9,#0"]);
        let text = format!(
            r#"import{{Message as Mx,Timestamp as Tq}}from"@bufbuild/protobuf";var pk="demo.v1.",B0,Wa,Wb,Em;B0=class B0 extends X0{{static get runtime(){{return 1}}static $p(){{return pk}}}};Em=d(rt,pk,"ToneKind",[[0,"UNSPECIFIED"],[1,"LOUD"]],1),Ef=d(rt,pk,"rawthing",[[0,"RAW_A"],[-1,"RAW_B"]]);Wa=class Wa extends B0{{constructor(){{super();this.x={{case:void 0}}}}static $(){{return["{widget}",Wb,Em,Tq]}}}};Wb=class Wb extends B0{{static $(){{return["{part}",Ef]}}}};svc={{typeName:"demo.v1.Shop",methods:{{buy:{{name:"Buy",I:Wa,O:Wb,kind:K5.Unary}},watch:{{name:"Watch",I:Wb,O:Wa,kind:K5.BiDiStreaming}}}}}};"#
        );
        let (schema, errors) = read_flat(&text);
        assert!(errors.is_empty(), "{errors:?}");
        let w = &schema.messages["demo.v1.widget"];
        assert_eq!(w.fields.len(), 4);
        assert_eq!(w.fields[0].ty, Ty::Scalar(9));
        assert_eq!(
            (&w.fields[1].ty, w.fields[1].label),
            (&Ty::Message("demo.v1.widget.part".into()), Label::Optional)
        );
        assert_eq!(w.fields[2].ty, Ty::Enum("demo.v1.ToneKind".into()));
        assert_eq!(w.fields[2].oneof.as_deref(), Some("pick"));
        assert_eq!(
            (&w.fields[3].ty, w.fields[3].label),
            (
                &Ty::Message("google.protobuf.Timestamp".into()),
                Label::Repeated
            )
        );
        let p = &schema.messages["demo.v1.widget.part"];
        assert_eq!(
            (&p.fields[0].ty, p.fields[0].label),
            (&Ty::Enum("demo.v1.rawthing".into()), Label::Map(9))
        );
        let tone = &schema.enums["demo.v1.ToneKind"].values;
        assert_eq!(
            tone,
            &[
                (0, "TONE_KIND_UNSPECIFIED".into()),
                (1, "TONE_KIND_LOUD".into())
            ]
        );
        let raw = &schema.enums["demo.v1.rawthing"].values;
        assert_eq!(raw, &[(0, "RAW_A".into()), (-1, "RAW_B".into())]);
        let shop = &schema.services["demo.v1.Shop"].methods;
        assert_eq!(shop.len(), 2);
        assert_eq!(
            (shop[1].name.as_str(), shop[1].input.as_str(), shop[1].kind),
            ("Watch", "demo.v1.widget.part", model::Kind::BiDiStreaming)
        );
    }

    #[test]
    fn webpack_modules_follow_requires_and_exports() {
        let thing = table(&["thing", "1 when #0", "2 other #1*"]);
        let other = table(&["sub.other", "1 mode #0"]);
        let text = format!(
            r#"(()=>{{var n={{"./a_pb.js"(t,r,e){{e.d(r,{{Xa:()=>o,Xm:()=>m}});var n=e("@bufbuild/protobuf");const i="demo.v2.";class s extends n.Message{{static $p(){{return i}}}}var m=(0,c.QT)(n.proto3,i,"sub.Mode",[[0,"UNSPECIFIED"]],1);class o extends s{{static $(){{return["{other}",m]}}}}}},"./b_pb.js"(t,r,e){{e.d(r,{{Xb:()=>q}});var a=e("./a_pb.js"),n=e("@bufbuild/protobuf");class s extends n.Message{{static $p(){{return"demo.v3."}}}}class q extends s{{static $(){{return["{thing}",n.Timestamp,a.Xa]}}}}}},"./c.js"(t,r,e){{var b=e("./b_pb.js"),a=e("./a_pb.js"),k=e("@bufbuild/protobuf");const z={{typeName:"demo.v3.Svc",methods:{{go:{{name:"Go",I:b.Xb,O:a.Xa,kind:k.MethodKind.ServerStreaming}}}}}}}}}}}})();"#
        );
        let scopes = js::read_modules(&text);
        assert_eq!(scopes.len(), 3);
        let mut errors = Vec::new();
        let schema = resolve::File::new("modules", &scopes).schema(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let t = &schema.messages["demo.v3.thing"];
        assert_eq!(
            t.fields[0].ty,
            Ty::Message("google.protobuf.Timestamp".into())
        );
        assert_eq!(t.fields[1].ty, Ty::Message("demo.v2.sub.other".into()));
        let o = &schema.messages["demo.v2.sub.other"];
        assert_eq!(o.fields[0].ty, Ty::Enum("demo.v2.sub.Mode".into()));
        // The prefix comes from the last name component only.
        assert_eq!(
            schema.enums["demo.v2.sub.Mode"].values[0].1,
            "MODE_UNSPECIFIED"
        );
        let go = &schema.services["demo.v3.Svc"].methods[0];
        assert_eq!(
            (go.input.as_str(), go.output.as_str()),
            ("demo.v3.thing", "demo.v2.sub.other")
        );
    }

    #[test]
    fn unresolvable_references_and_conflicts_are_reported() {
        let a = table(&["thing", "1 x #0"]);
        let b = table(&["thing", "1 x 9"]);
        let text = format!(
            r#"var pk="demo.v1.";B0=class B0 extends X0{{static $p(){{return pk}}}};Wa=class Wa extends B0{{static $(){{return["{a}",Nowhere]}}}};Wb=class Wb extends B0{{static $(){{return["{b}"]}}}};Wc=class Wc extends B0{{static $(){{return["{b}",Wa]}}}};"#
        );
        let (schema, errors) = read_flat(&text);
        assert!(errors.iter().any(|e| e.contains("Nowhere")), "{errors:?}");
        assert_eq!(schema.messages.len(), 1);
        let mut other = Schema::default();
        let mut changed = schema.messages["demo.v1.thing"].clone();
        changed.fields[0].number = 2;
        other.messages.insert("demo.v1.thing".into(), changed);
        let mut merged = schema;
        assert_eq!(merged.merge(other, "second").len(), 1);
    }
}
