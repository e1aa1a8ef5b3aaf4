//! Reading the SDK's compiled JavaScript without a JS parser: the file is cut into scopes (one
//! flat scope for the bundled build, one per webpack module for cjs/esm), and each scope's
//! definitions that matter for the schema are collected by their fixed generated shapes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;

/// A class in a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClassDef {
    /// A per-file base class: its `$p()` returns the package expression.
    Base { package: String },
    /// A message: its base class expression, field table and reference expressions.
    Message {
        base: String,
        table: String,
        refs: Vec<String>,
    },
}

/// An enum built by the SDK's enum helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnumDef {
    /// The package expression (an identifier or a string literal with its quotes).
    pub(crate) package: String,
    /// Relative name (`Outer.Inner`).
    pub(crate) name: String,
    /// (number, name as written).
    pub(crate) values: Vec<(i32, String)>,
    /// Whether the written names lack the `ENUM_NAME_` prefix (the helper's trailing `1`).
    pub(crate) prefix_stripped: bool,
}

/// A service object literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceDef {
    pub(crate) type_name: String,
    pub(crate) methods: Vec<MethodDef>,
}

/// One method entry: input/output expressions and the kind's last member name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MethodDef {
    pub(crate) name: String,
    pub(crate) input: String,
    pub(crate) output: String,
    pub(crate) kind: String,
}

/// The definitions of one scope.
#[derive(Debug, Default)]
pub(crate) struct Scope {
    /// Webpack module id (`None` for a flat bundle).
    pub(crate) module: Option<String>,
    pub(crate) classes: BTreeMap<String, ClassDef>,
    pub(crate) enums: BTreeMap<String, EnumDef>,
    /// `ident = "some.package."` string constants.
    pub(crate) strings: BTreeMap<String, String>,
    /// `ident = require("module id")`.
    pub(crate) requires: BTreeMap<String, String>,
    /// Webpack export name -> local expression.
    pub(crate) exports: BTreeMap<String, String>,
    /// ES imports from `@bufbuild/protobuf`: local name -> imported name.
    pub(crate) imports: BTreeMap<String, String>,
    pub(crate) services: Vec<ServiceDef>,
    /// Identifiers defined twice differently (an error only if a reference needs one).
    pub(crate) ambiguous: BTreeSet<String>,
    /// Problems met while reading (unreadable shapes).
    pub(crate) errors: Vec<String>,
}

macro_rules! re {
    ($name:ident, $pattern:expr) => {
        static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new($pattern).expect("valid pattern"));
    };
}

re!(
    MODULE_KEY,
    r#"[,{]"([^"\n]+)"\(([\w$]+)(?:,([\w$]+))?(?:,([\w$]+))?\)\{"#
);
re!(
    CLASS,
    r"(?:^|[^\w$])class ([\w$]+) extends ([\w$]+(?:\.[\w$]+)?)\{"
);
re!(TABLE_START, r"static \$\(\)\{return\[");
re!(
    PACKAGE_START,
    r"static \$p\(\)\{return ?([\w$]+|\x22[^\x22]*\x22)\}"
);
re!(
    ENUM,
    r#"(?:^|[^\w$.])([\w$]+)=(?:\((?:[\w$]+(?:\.[\w$]+)?,)+)?(?:[\w$]+|\(0,(?:[\w$]+|[\w$]+\("[^"]+"\))\.[\w$]+\))\([\w$]+(?:\.[\w$]+)?,([\w$]+|"[\w.]*"),"([\w.]+)",\["#
);
re!(ENUM_VALUE, r#"^\[(-?[0-9]+),"([\w]+)"\]"#);
re!(
    STRING,
    r#"(?:^|[^\w$.])([\w$]+)="([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*\.)""#
);
re!(SERVICE, r#"\{typeName:"([\w.]+)",methods:\{"#);
re!(
    METHOD,
    r#"name:"(\w+)",I:([\w$]+(?:\.[\w$]+)?),O:([\w$]+(?:\.[\w$]+)?),kind:([\w$.]+)"#
);
re!(EXPORT_ENTRY, r"^([\w$]+):\(\)=>([\w$]+(?:\.[\w$]+)?)$");
re!(ES_IMPORT, r#"import\{([^}]*)\}from"@bufbuild/protobuf""#);

/// Splits a webpack build into module scopes (keyed `"id"(module,exports,require){`) and reads
/// each. Text before the first module is ignored.
pub(crate) fn read_modules(text: &str) -> Vec<Scope> {
    let keys: Vec<_> = MODULE_KEY.captures_iter(text).collect();
    let mut scopes = Vec::new();
    let mut patterns = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        let whole = key.get(0).expect("match");
        let end = keys
            .get(i + 1)
            .map_or(text.len(), |k| k.get(0).expect("match").start());
        let body = &text[whole.end()..end];
        // Only modules with generated code matter (and reading the others is slow).
        let mut scope = if MARKERS.iter().any(|m| body.contains(m)) {
            let require = key.get(4).map_or("e", |m| m.as_str());
            let patterns = patterns
                .entry(require.to_owned())
                .or_insert_with(|| ModulePatterns::new(require));
            read_scope(body, Some(patterns))
        } else {
            Scope::default()
        };
        scope.module = Some(key[1].to_owned());
        scopes.push(scope);
    }
    scopes
}

/// Text every scope with generated code contains one of.
const MARKERS: [&str; 3] = ["static $", "typeName:\"", ",[[0,\""];

/// The patterns for a webpack module's requires and exports, given its require function's name.
#[derive(Debug)]
pub(crate) struct ModulePatterns {
    requires: Regex,
    exports: Regex,
}

impl ModulePatterns {
    pub(crate) fn new(require: &str) -> Self {
        let req = regex::escape(require);
        Self {
            // `a=e("id")`, or a comma expression `a=(e("x"),e("id"))` whose value is the last.
            requires: Regex::new(&format!(
                r#"(?:^|[^\w$.])([\w$]+)=(?:\((?:{req}\("[^"]+"\),)+)?{req}\("([^"]+)"\)"#
            ))
            .expect("valid pattern"),
            exports: Regex::new(&format!(r"(?:^|[^\w$.]){req}\.d\([\w$]+,\{{([^}}]*)\}}\)"))
                .expect("valid pattern"),
        }
    }
}

/// Reads one scope; `module` holds the require/export patterns of a webpack module.
pub(crate) fn read_scope(text: &str, module: Option<&ModulePatterns>) -> Scope {
    let mut scope = Scope::default();
    read_classes(text, &mut scope);
    read_enums(text, &mut scope);
    for c in STRING.captures_iter(text) {
        insert(
            &mut scope.strings,
            &c[1],
            c[2].to_owned(),
            &mut scope.ambiguous,
        );
    }
    if let Some(patterns) = module {
        for c in patterns.requires.captures_iter(text) {
            insert(
                &mut scope.requires,
                &c[1],
                c[2].to_owned(),
                &mut scope.ambiguous,
            );
        }
        for c in patterns.exports.captures_iter(text) {
            for item in c[1].split(',').filter(|i| !i.is_empty()) {
                match EXPORT_ENTRY.captures(item) {
                    Some(e) => insert(
                        &mut scope.exports,
                        &e[1],
                        e[2].to_owned(),
                        &mut scope.ambiguous,
                    ),
                    None => scope.errors.push(format!("unreadable export {item:?}")),
                }
            }
        }
    }
    for c in ES_IMPORT.captures_iter(text) {
        for item in c[1].split(',') {
            let (imported, local) = item.split_once(" as ").unwrap_or((item, item));
            insert(
                &mut scope.imports,
                local.trim(),
                imported.trim().to_owned(),
                &mut scope.ambiguous,
            );
        }
    }
    read_services(text, &mut scope);
    scope
}

fn insert<T: PartialEq>(
    map: &mut BTreeMap<String, T>,
    key: &str,
    value: T,
    ambiguous: &mut BTreeSet<String>,
) {
    match map.get(key) {
        Some(old) if *old != value => {
            ambiguous.insert(key.to_owned());
        }
        _ => {
            map.insert(key.to_owned(), value);
        }
    }
}

fn read_classes(text: &str, scope: &mut Scope) {
    let classes: Vec<_> = CLASS.captures_iter(text).collect();
    for (i, c) in classes.iter().enumerate() {
        let body_start = c.get(0).expect("match").end();
        let body_end = classes
            .get(i + 1)
            .map_or(text.len(), |n| n.get(0).expect("match").start());
        let body = &text[body_start..body_end];
        let def = if let Some(m) = TABLE_START.find(body) {
            match read_table_array(&body[m.end()..]) {
                Ok((table, refs)) => ClassDef::Message {
                    base: c[2].to_owned(),
                    table,
                    refs,
                },
                Err(e) => {
                    scope.errors.push(format!("class {}: {e}", &c[1]));
                    continue;
                }
            }
        } else if let Some(p) = PACKAGE_START.captures(body) {
            ClassDef::Base {
                package: p[1].to_owned(),
            }
        } else {
            continue;
        };
        insert(&mut scope.classes, &c[1], def, &mut scope.ambiguous);
    }
}

/// Reads `"table",ref,ref]` (the text after `return[`).
pub(crate) fn read_table_array(text: &str) -> Result<(String, Vec<String>), String> {
    let rest = text
        .strip_prefix('"')
        .ok_or("table is not a string literal")?;
    let end = rest.find('"').ok_or("unterminated table string")?;
    let table = &rest[..end];
    if table.contains('\\') {
        return Err(format!("escape in table {table:?}"));
    }
    let mut rest = &rest[end + 1..];
    let mut refs = Vec::new();
    loop {
        if rest.starts_with(']') {
            return Ok((table.to_owned(), refs));
        }
        rest = rest
            .strip_prefix(',')
            .ok_or("expected , or ] after a table item")?;
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(format!("unreadable reference after table {table:?}"));
        }
        refs.push(rest[..len].to_owned());
        rest = &rest[len..];
    }
}

fn read_enums(text: &str, scope: &mut Scope) {
    for c in ENUM.captures_iter(text) {
        let mut rest = &text[c.get(0).expect("match").end()..];
        let mut values = Vec::new();
        let parsed = loop {
            let Some(v) = ENUM_VALUE.captures(rest) else {
                break Err("unreadable enum value list");
            };
            let Ok(number) = v[1].parse::<i32>() else {
                break Err("enum number out of range");
            };
            values.push((number, v[2].to_owned()));
            rest = &rest[v.get(0).expect("match").end()..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if let Some(r) = rest.strip_prefix(']') {
                rest = r;
                break Ok(());
            } else {
                break Err("unterminated enum value list");
            }
        };
        // After the list: `)` (names as written), `,1)` (prefix stripped) or `,[...])`
        // (explicit local names: the written names are the full ones).
        let prefix_stripped = match (parsed, rest.as_bytes()) {
            (Ok(()), [b')', ..]) | (Ok(()), [b',', b'[', ..]) => false,
            (Ok(()), [b',', b'1', b')', ..]) => true,
            (result, _) => {
                let why = result
                    .err()
                    .unwrap_or("unexpected text after the value list");
                scope.errors.push(format!("enum {}: {why}", &c[3]));
                continue;
            }
        };
        let def = EnumDef {
            package: c[2].to_owned(),
            name: c[3].to_owned(),
            values,
            prefix_stripped,
        };
        insert(&mut scope.enums, &c[1], def, &mut scope.ambiguous);
    }
}

fn read_services(text: &str, scope: &mut Scope) {
    for c in SERVICE.captures_iter(text) {
        let start = c.get(0).expect("match").end();
        // The methods object ends at its matching brace (names hold no braces).
        let mut depth = 1usize;
        let mut end = None;
        for (i, b) in text[start..].bytes().enumerate() {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(start + i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            scope
                .errors
                .push(format!("service {}: unterminated", &c[1]));
            continue;
        };
        let body = &text[start..end];
        let methods: Vec<MethodDef> = METHOD
            .captures_iter(body)
            .map(|m| MethodDef {
                name: m[1].to_owned(),
                input: m[2].to_owned(),
                output: m[3].to_owned(),
                kind: m[4].rsplit('.').next().unwrap_or_default().to_owned(),
            })
            .collect();
        if methods.len() != body.matches("name:").count() {
            scope
                .errors
                .push(format!("service {}: unreadable method entry", &c[1]));
        }
        scope.services.push(ServiceDef {
            type_name: c[1].to_owned(),
            methods,
        });
    }
}
