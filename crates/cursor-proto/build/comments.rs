//! Carries the `//` comments of our `.proto` files into the generated Rust docs.
//!
//! `protobuf-parse`'s pure parser does not record source locations, so prost-build would emit
//! undocumented types. This reads the comments with a small line-based scan (enough for the
//! layout of our own files: one declaration per line) and attaches them as a
//! `SourceCodeInfo`, which prost-build turns into `///` docs. prost-build looks up a location
//! for every element it generates, so one is emitted for each, commented or not.

use std::collections::HashMap;

use prost_types::source_code_info::Location;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, SourceCodeInfo};

/// Leading and trailing comment text, keyed by fully qualified name without the leading dot
/// (`agent.v1.ExecServerMessage`, `agent.v1.ExecServerMessage.exec_id`,
/// `aiserver.v1.ErrorDetails.Error.ERROR_TIMEOUT`).
#[derive(Default, Debug)]
pub(crate) struct Comments(HashMap<String, (String, String)>);

enum Scope {
    /// message, enum or service: part of the qualified name.
    Named(String),
    /// oneof: its fields belong to the enclosing message.
    Oneof,
}

impl Comments {
    /// Scans one `.proto` source.
    pub(crate) fn scan(&mut self, source: &str) {
        let mut package = String::new();
        let mut stack: Vec<Scope> = Vec::new();
        let mut pending: Vec<String> = Vec::new();
        for line in source.lines() {
            let trimmed = line.trim();
            if let Some(text) = trimmed.strip_prefix("//") {
                pending.push(text.to_owned());
                continue;
            }
            if trimmed.is_empty() {
                pending.clear();
                continue;
            }
            let (code, trailing) = match trimmed.split_once("//") {
                Some((c, t)) => (c.trim(), t.to_owned()),
                None => (trimmed, String::new()),
            };
            let leading = std::mem::take(&mut pending);
            let prefix = |stack: &[Scope]| {
                let mut name = package.clone();
                for s in stack {
                    if let Scope::Named(n) = s {
                        name.push('.');
                        name.push_str(n);
                    }
                }
                name
            };
            let words: Vec<&str> = code.split_whitespace().collect();
            match words.as_slice() {
                ["package", p] => package = p.trim_end_matches(';').to_owned(),
                [kw @ ("message" | "enum" | "service" | "oneof"), name, ..] => {
                    let key = format!("{}.{name}", prefix(&stack));
                    self.record(key, &leading, trailing);
                    stack.push(if *kw == "oneof" {
                        Scope::Oneof
                    } else {
                        Scope::Named((*name).to_owned())
                    });
                    if code.ends_with('}') {
                        stack.pop();
                    }
                }
                ["rpc", rest @ ..] => {
                    let name = rest.join(" ");
                    let name = name.split('(').next().unwrap_or_default().trim();
                    self.record(format!("{}.{name}", prefix(&stack)), &leading, trailing);
                }
                ["}"] | ["};"] => {
                    stack.pop();
                }
                _ if code.contains('=') && code.ends_with(';') => {
                    let before = code.split('=').next().unwrap_or_default();
                    if let Some(name) = before.split_whitespace().last() {
                        self.record(format!("{}.{name}", prefix(&stack)), &leading, trailing);
                    }
                }
                _ => {}
            }
        }
    }

    fn record(&mut self, key: String, leading: &[String], trailing: String) {
        if leading.is_empty() && trailing.is_empty() {
            return;
        }
        // Source tags such as [BY] are not links: escape every bracket (prost-build's own
        // escaping misses adjacent pairs like "[BY]/[SPEC]").
        let escape = |t: &str| t.replace('[', "\\[").replace(']', "\\]");
        let mut text = String::new();
        for line in leading {
            text.push_str(&escape(line));
            text.push('\n');
        }
        let trailing = if trailing.is_empty() {
            trailing
        } else {
            escape(&trailing) + "\n"
        };
        self.0.insert(key, (text, trailing));
    }

    /// Sets `file.source_code_info` from the scanned comments.
    pub(crate) fn attach(&self, file: &mut FileDescriptorProto) {
        let package = file.package().to_owned();
        let mut out = Vec::new();
        for (i, m) in file.message_type.iter().enumerate() {
            self.message(
                &mut out,
                vec![4, i as i32],
                &format!("{package}.{}", m.name()),
                m,
            );
        }
        for (i, e) in file.enum_type.iter().enumerate() {
            self.enumeration(
                &mut out,
                vec![5, i as i32],
                &format!("{package}.{}", e.name()),
                e,
            );
        }
        for (i, s) in file.service.iter().enumerate() {
            let fq = format!("{package}.{}", s.name());
            self.location(&mut out, vec![6, i as i32], &fq);
            for (k, m) in s.method.iter().enumerate() {
                self.location(
                    &mut out,
                    vec![6, i as i32, 2, k as i32],
                    &format!("{fq}.{}", m.name()),
                );
            }
        }
        file.source_code_info = Some(SourceCodeInfo { location: out });
    }

    fn message(&self, out: &mut Vec<Location>, path: Vec<i32>, fq: &str, m: &DescriptorProto) {
        self.location(out, path.clone(), fq);
        let child = |kind: i32, k: usize| {
            let mut p = path.clone();
            p.extend([kind, k as i32]);
            p
        };
        for (k, f) in m.field.iter().enumerate() {
            self.location(out, child(2, k), &format!("{fq}.{}", f.name()));
        }
        for (k, n) in m.nested_type.iter().enumerate() {
            self.message(out, child(3, k), &format!("{fq}.{}", n.name()), n);
        }
        for (k, e) in m.enum_type.iter().enumerate() {
            self.enumeration(out, child(4, k), &format!("{fq}.{}", e.name()), e);
        }
        for (k, o) in m.oneof_decl.iter().enumerate() {
            self.location(out, child(8, k), &format!("{fq}.{}", o.name()));
        }
    }

    fn enumeration(
        &self,
        out: &mut Vec<Location>,
        path: Vec<i32>,
        fq: &str,
        e: &EnumDescriptorProto,
    ) {
        self.location(out, path.clone(), fq);
        for (k, v) in e.value.iter().enumerate() {
            let mut p = path.clone();
            p.extend([2, k as i32]);
            self.location(out, p, &format!("{fq}.{}", v.name()));
        }
    }

    fn location(&self, out: &mut Vec<Location>, path: Vec<i32>, fq: &str) {
        let (leading, trailing) = self.0.get(fq).cloned().unwrap_or_default();
        out.push(Location {
            path,
            span: vec![0, 0, 0],
            leading_comments: (!leading.is_empty()).then_some(leading),
            trailing_comments: (!trailing.is_empty()).then_some(trailing),
            leading_detached_comments: Vec::new(),
        });
    }
}
