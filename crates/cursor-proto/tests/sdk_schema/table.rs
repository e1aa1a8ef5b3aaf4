//! The SDK's compact field tables: a message's relative name, then one `|`-separated entry per
//! field, `<number> <name> <type>[?|*] [<oneof>]`. A type is a `FieldDescriptorProto.Type`
//! number, `#i` (the i-th reference returned next to the table: a message or an enum), or
//! `K,V` for a map (K a scalar number, V a scalar number or `#i`).

use super::model::Label;

/// A field type before references are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawTy {
    Scalar(i32),
    /// Index into the table's reference list.
    Ref(usize),
}

/// A field as the table states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawField {
    pub(crate) number: i32,
    pub(crate) name: String,
    pub(crate) ty: RawTy,
    pub(crate) label: Label,
    pub(crate) oneof: Option<String>,
}

/// A parsed table: the message name relative to its package, and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawTable {
    pub(crate) name: String,
    pub(crate) fields: Vec<RawField>,
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

fn parse_ty(s: &str) -> Result<RawTy, String> {
    if let Some(index) = s.strip_prefix('#') {
        return index
            .parse()
            .map(RawTy::Ref)
            .map_err(|_| format!("bad reference {s:?}"));
    }
    match s.parse::<i32>() {
        Ok(n @ (1..=9 | 12 | 13 | 15..=18)) => Ok(RawTy::Scalar(n)),
        _ => Err(format!("bad scalar type {s:?}")),
    }
}

/// Parses one table string.
pub(crate) fn parse(table: &str) -> Result<RawTable, String> {
    let mut parts = table.split('|');
    let name = parts.next().unwrap_or_default();
    if name.is_empty() || !name.split('.').all(is_ident) {
        return Err(format!("bad message name {name:?} in table {table:?}"));
    }
    let mut fields = Vec::new();
    for entry in parts {
        let field = parse_field(entry).map_err(|e| format!("{e} in table {table:?}"))?;
        if fields.iter().any(|f: &RawField| f.number == field.number) {
            return Err(format!(
                "field number {} twice in table {table:?}",
                field.number
            ));
        }
        fields.push(field);
    }
    Ok(RawTable {
        name: name.to_owned(),
        fields,
    })
}

fn parse_field(entry: &str) -> Result<RawField, String> {
    let tokens: Vec<&str> = entry.split(' ').collect();
    let (number, name, ty, oneof) = match tokens.as_slice() {
        [number, name, ty] => (number, name, ty, None),
        [number, name, ty, oneof] => (number, name, ty, Some(*oneof)),
        _ => return Err(format!("bad field entry {entry:?}")),
    };
    let number: i32 = number
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("bad field number in {entry:?}"))?;
    if !is_ident(name) {
        return Err(format!("bad field name in {entry:?}"));
    }
    if let Some(o) = oneof
        && !is_ident(o)
    {
        return Err(format!("bad oneof name in {entry:?}"));
    }
    let (ty, label) = if let Some(t) = ty.strip_suffix('?') {
        (t, Label::Optional)
    } else if let Some(t) = ty.strip_suffix('*') {
        (t, Label::Repeated)
    } else {
        (*ty, Label::Plain)
    };
    if label != Label::Plain && oneof.is_some() {
        // The SDK's reader would drop the oneof silently; no table should say both.
        return Err(format!("{entry:?} is both {label:?} and in a oneof"));
    }
    let (ty, label) = match ty.split_once(',') {
        Some((key, value)) => {
            if label != Label::Plain || oneof.is_some() {
                return Err(format!("map with a label or oneof in {entry:?}"));
            }
            let RawTy::Scalar(key) = parse_ty(key)? else {
                return Err(format!("map key is not a scalar in {entry:?}"));
            };
            (parse_ty(value)?, Label::Map(key))
        }
        None => (parse_ty(ty)?, label),
    };
    Ok(RawField {
        number,
        name: (*name).to_owned(),
        ty,
        label,
        oneof: oneof.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Joins entries with the table separator at run time (tests use invented names only).
    fn table(parts: &[&str]) -> String {
        parts.join("|")
    }

    #[test]
    fn scalars_labels_refs_maps_and_oneofs() {
        let t = parse(&table(&[
            "gadget.Part",
            "1 label 9",
            "2 count 3?",
            "4 tags 9*",
            "3 kind #0 choice",
            "5 other 8 choice",
            "7 attrs 9,#1",
            "6 sizes 9,5",
        ]))
        .expect("parses");
        assert_eq!(t.name, "gadget.Part");
        let f = &t.fields;
        assert_eq!(f.len(), 7);
        assert_eq!(
            (f[0].number, f[0].ty.clone(), f[0].label),
            (1, RawTy::Scalar(9), Label::Plain)
        );
        assert_eq!(f[1].label, Label::Optional);
        assert_eq!(f[2].label, Label::Repeated);
        assert_eq!(f[3].ty, RawTy::Ref(0));
        assert_eq!(f[3].oneof.as_deref(), Some("choice"));
        assert_eq!(f[4].oneof.as_deref(), Some("choice"));
        assert_eq!(
            (f[5].ty.clone(), f[5].label),
            (RawTy::Ref(1), Label::Map(9))
        );
        assert_eq!(
            (f[6].ty.clone(), f[6].label),
            (RawTy::Scalar(5), Label::Map(9))
        );
    }

    #[test]
    fn a_table_without_fields() {
        let t = parse("emptything").expect("parses");
        assert!(t.fields.is_empty());
    }

    #[test]
    fn malformed_entries_are_errors() {
        for bad in [
            table(&["thing", "x name 9"]),
            table(&["thing", "0 name 9"]),
            table(&["thing", "1 name 10"]),
            table(&["thing", "1 name #x"]),
            table(&["thing", "1 name 9 a b"]),
            table(&["thing", "1 name 9? group"]),
            table(&["thing", "1 name 9,9*"]),
            table(&["thing", "1 name #0,9"]),
            table(&["thing", "1 a 9", "1 b 9"]),
            table(&["bad name", "1 a 9"]),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}
