//! Turns the scopes of one JavaScript file into a [`Schema`]: table references, base classes,
//! package constants, webpack requires/exports and `@bufbuild/protobuf` imports are followed to
//! fully qualified message and enum names.

use std::collections::BTreeMap;

use super::js::{ClassDef, EnumDef, Scope};
use super::model::{Enum, Field, Kind, Message, Method, Schema, Service, Ty};
use super::table::{self, RawTy};

/// The well-known types the generated code takes from `@bufbuild/protobuf`.
fn well_known(name: &str) -> Option<Ty> {
    match name {
        "NullValue" => Some(Ty::Enum("google.protobuf.NullValue".to_owned())),
        "Struct" | "Value" | "ListValue" | "Timestamp" | "Duration" | "Empty" | "Any"
        | "FieldMask" | "BoolValue" | "StringValue" | "BytesValue" | "Int32Value"
        | "Int64Value" | "UInt32Value" | "UInt64Value" | "FloatValue" | "DoubleValue" => {
            Some(Ty::Message(format!("google.protobuf.{name}")))
        }
        _ => None,
    }
}

const BUFBUILD: &str = "@bufbuild/protobuf";

/// The scopes of one file and its module index.
pub(crate) struct File<'a> {
    name: &'a str,
    scopes: &'a [Scope],
    modules: BTreeMap<&'a str, usize>,
}

impl<'a> File<'a> {
    pub(crate) fn new(name: &'a str, scopes: &'a [Scope]) -> Self {
        let modules = scopes
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.module.as_deref().map(|m| (m, i)))
            .collect();
        Self {
            name,
            scopes,
            modules,
        }
    }

    fn place(&self, scope: usize) -> String {
        match &self.scopes[scope].module {
            Some(m) => format!("{} module {m}", self.name),
            None => self.name.to_owned(),
        }
    }

    /// Follows `expr` (an identifier or `module.export`) to its definition.
    fn lookup(&self, scope: usize, expr: &str, depth: usize) -> Result<(usize, Def<'a>), String> {
        if depth > 8 {
            return Err(format!("{expr}: re-export chain too long"));
        }
        let s = &self.scopes[scope];
        let head = expr.split('.').next().unwrap_or_default();
        if s.ambiguous.contains(head) {
            return Err(format!(
                "{expr}: {head} is defined more than once in its scope"
            ));
        }
        if let Some((object, member)) = expr.split_once('.') {
            let module = s
                .requires
                .get(object)
                .ok_or_else(|| format!("{expr}: {object} is not a required module"))?;
            if module == BUFBUILD {
                return Ok((scope, Def::External(member.to_owned())));
            }
            let &target = self
                .modules
                .get(module.as_str())
                .ok_or_else(|| format!("{expr}: module {module} not in the file"))?;
            let local = self.scopes[target]
                .exports
                .get(member)
                .ok_or_else(|| format!("{expr}: {module} does not export {member}"))?;
            return self.lookup(target, local, depth + 1);
        }
        if let Some(c) = s.classes.get(expr) {
            return Ok((scope, Def::Class(c)));
        }
        if let Some(e) = s.enums.get(expr) {
            return Ok((scope, Def::Enum(e)));
        }
        if let Some(imported) = s.imports.get(expr) {
            return Ok((scope, Def::External(imported.clone())));
        }
        Err(format!("{expr}: no class, enum or import of that name"))
    }

    fn package(&self, scope: usize, expr: &str) -> Result<String, String> {
        if let Some(literal) = expr.strip_prefix('"').and_then(|e| e.strip_suffix('"')) {
            return Ok(literal.to_owned());
        }
        self.scopes[scope]
            .strings
            .get(expr)
            .cloned()
            .ok_or_else(|| format!("package constant {expr} not found"))
    }

    /// The full name of a message class.
    fn message_name(&self, scope: usize, base: &str, table: &str) -> Result<String, String> {
        let (base_scope, def) = self.lookup(scope, base, 0)?;
        let Def::Class(ClassDef::Base { package }) = def else {
            return Err(format!("base class {base} has no package"));
        };
        let package = self.package(base_scope, package)?;
        let relative = table.split('|').next().unwrap_or_default();
        Ok(format!("{package}{relative}"))
    }

    fn enum_name(&self, scope: usize, e: &EnumDef) -> Result<String, String> {
        Ok(format!("{}{}", self.package(scope, &e.package)?, e.name))
    }

    /// The type an expression names.
    fn ty(&self, scope: usize, expr: &str) -> Result<Ty, String> {
        match self.lookup(scope, expr, 0)? {
            (s, Def::Class(ClassDef::Message { base, table, .. })) => {
                Ok(Ty::Message(self.message_name(s, base, table)?))
            }
            (_, Def::Class(ClassDef::Base { .. })) => Err(format!("{expr} is a base class")),
            (s, Def::Enum(e)) => Ok(Ty::Enum(self.enum_name(s, e)?)),
            (_, Def::External(name)) => {
                well_known(&name).ok_or_else(|| format!("{expr}: unknown import {name}"))
            }
        }
    }

    /// Everything the file declares. Unresolvable items are described in `errors`.
    pub(crate) fn schema(&self, errors: &mut Vec<String>) -> Schema {
        let mut schema = Schema::default();
        let mut conflicts = Vec::new();
        for (i, scope) in self.scopes.iter().enumerate() {
            let place = self.place(i);
            errors.extend(scope.errors.iter().map(|e| format!("{place}: {e}")));
            for (ident, class) in &scope.classes {
                let ClassDef::Message { base, table, refs } = class else {
                    continue;
                };
                match self.message(i, base, table, refs) {
                    Ok((name, m)) => {
                        let mut one = Schema::default();
                        one.messages.insert(name, m);
                        conflicts.extend(schema.merge(one, &place));
                    }
                    Err(e) => errors.push(format!("{place}: class {ident}: {e}")),
                }
            }
            for (ident, e) in &scope.enums {
                match self.enum_name(i, e) {
                    Ok(name) => {
                        let mut one = Schema::default();
                        one.enums.insert(name, enum_values(e));
                        conflicts.extend(schema.merge(one, &place));
                    }
                    Err(err) => errors.push(format!("{place}: enum {ident}: {err}")),
                }
            }
            for service in &scope.services {
                let mut methods = Vec::new();
                for m in &service.methods {
                    match self.method(i, m) {
                        Ok(m) => methods.push(m),
                        Err(e) => {
                            errors.push(format!("{place}: {}.{}: {e}", service.type_name, m.name))
                        }
                    }
                }
                let mut one = Schema::default();
                one.services
                    .insert(service.type_name.clone(), Service { methods });
                conflicts.extend(schema.merge(one, &place));
            }
        }
        errors.extend(conflicts);
        schema
    }

    fn message(
        &self,
        scope: usize,
        base: &str,
        table: &str,
        refs: &[String],
    ) -> Result<(String, Message), String> {
        let name = self.message_name(scope, base, table)?;
        let raw = table::parse(table)?;
        let mut fields = Vec::new();
        for f in raw.fields {
            let ty = match f.ty {
                RawTy::Scalar(n) => Ty::Scalar(n),
                RawTy::Ref(r) => {
                    let expr = refs
                        .get(r)
                        .ok_or_else(|| format!("field {}: reference #{r} missing", f.name))?;
                    self.ty(scope, expr)
                        .map_err(|e| format!("field {}: {e}", f.name))?
                }
            };
            fields.push(Field {
                number: f.number,
                name: f.name,
                ty,
                label: f.label,
                oneof: f.oneof,
            });
        }
        Ok((name, Message { fields }))
    }

    fn method(&self, scope: usize, m: &super::js::MethodDef) -> Result<Method, String> {
        let message = |expr: &str| match self.ty(scope, expr)? {
            Ty::Message(name) => Ok(name),
            other => Err(format!("{expr} is not a message: {other}")),
        };
        let kind = match m.kind.as_str() {
            "Unary" => Kind::Unary,
            "ServerStreaming" => Kind::ServerStreaming,
            "ClientStreaming" => Kind::ClientStreaming,
            "BiDiStreaming" => Kind::BiDiStreaming,
            other => return Err(format!("unknown method kind {other}")),
        };
        Ok(Method {
            name: m.name.clone(),
            input: message(&m.input)?,
            output: message(&m.output)?,
            kind,
        })
    }
}

/// What an expression resolved to.
enum Def<'a> {
    Class(&'a ClassDef),
    Enum(&'a EnumDef),
    /// A name imported from `@bufbuild/protobuf`.
    External(String),
}

/// The enum helper's value names: with the trailing `1` the written names lack the prefix
/// `SCREAMING_SNAKE(last name component) + "_"`, which is put back here.
pub(crate) fn enum_values(e: &EnumDef) -> Enum {
    let short = e.name.rsplit('.').next().unwrap_or_default();
    let prefix = if e.prefix_stripped {
        let mut p = String::new();
        for (i, c) in short.chars().enumerate() {
            if i > 0 && c.is_ascii_uppercase() {
                p.push('_');
            }
            p.push(c.to_ascii_uppercase());
        }
        p.push('_');
        p
    } else {
        String::new()
    };
    Enum {
        values: e
            .values
            .iter()
            .map(|(n, v)| (*n, format!("{prefix}{v}")))
            .collect(),
    }
}
