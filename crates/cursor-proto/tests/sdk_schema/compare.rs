//! Compares our schema with the SDK's, item by item, by fully qualified name.

use std::fmt::Write as _;

use super::model::{Field, Label, Schema, Ty};

/// Fields allowed to differ, each with the reason.
pub(crate) struct Exception {
    /// `package.Message.field`.
    pub(crate) field: &'static str,
    /// Our (type, label) that is accepted in place of the SDK's.
    pub(crate) ours: (Ty, Label),
}

/// The outcome: disagreements fail the test, the rest is reported. What only one side declares
/// cannot disagree: it is listed (our items the SDK lacks: legacy chat, retired enum values,
/// fields the SDK dropped; SDK items we lack: not needed yet).
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) disagreements: Vec<String>,
    pub(crate) messages_compared: usize,
    pub(crate) fields_compared: usize,
    pub(crate) fields_agreeing: usize,
    pub(crate) enums_compared: usize,
    pub(crate) enum_values_compared: usize,
    pub(crate) methods_compared: usize,
    pub(crate) exceptions_used: Vec<String>,
    pub(crate) messages_absent: Vec<String>,
    pub(crate) fields_absent: Vec<String>,
    pub(crate) enums_absent: Vec<String>,
    pub(crate) values_absent: Vec<String>,
    pub(crate) services_absent: Vec<String>,
    pub(crate) methods_absent: Vec<String>,
    /// SDK fields of messages we declare that we do not declare (informational).
    pub(crate) sdk_only_fields: Vec<String>,
    /// SDK enum values of enums we declare that we lack (informational).
    pub(crate) sdk_only_values: Vec<String>,
    /// SDK methods of services we declare that we lack (informational).
    pub(crate) sdk_only_methods: Vec<String>,
}

fn describe(f: &Field) -> String {
    let shape = match f.label {
        Label::Map(k) => format!("map<{}, {}>", super::model::scalar_name(k), f.ty),
        label => format!("{label} {}", f.ty),
    };
    match &f.oneof {
        Some(o) => format!("{shape} {} (oneof {o})", f.name),
        None => format!("{shape} {}", f.name),
    }
}

/// Compares everything `ours` declares with `sdk`.
pub(crate) fn compare(ours: &Schema, sdk: &Schema, exceptions: &[Exception]) -> Report {
    let mut r = Report::default();
    for (name, ours_m) in &ours.messages {
        let Some(sdk_m) = sdk.messages.get(name) else {
            r.messages_absent.push(name.clone());
            continue;
        };
        r.messages_compared += 1;
        for f in &ours_m.fields {
            let path = format!("{name}.{}", f.name);
            let Some(s) = sdk_m.field(f.number) else {
                r.fields_absent.push(format!("{path} = {}", f.number));
                continue;
            };
            r.fields_compared += 1;
            let mut problems = Vec::new();
            if s.name != f.name {
                problems.push(format!("name ours {}, SDK {}", f.name, s.name));
            }
            let excepted = matches!(s.ty, Ty::Message(_))
                && exceptions
                    .iter()
                    .any(|e| e.field == path && e.ours == (f.ty.clone(), f.label));
            if excepted {
                r.exceptions_used.push(format!(
                    "{path} = {}: ours {}, SDK {}",
                    f.number,
                    describe(f),
                    describe(s)
                ));
            } else {
                if s.ty != f.ty {
                    problems.push(format!("type ours {}, SDK {}", f.ty, s.ty));
                }
                if s.label != f.label {
                    problems.push(format!("label ours {}, SDK {}", f.label, s.label));
                }
            }
            if s.oneof != f.oneof {
                problems.push(format!(
                    "oneof ours {}, SDK {}",
                    f.oneof.as_deref().unwrap_or("(none)"),
                    s.oneof.as_deref().unwrap_or("(none)")
                ));
            }
            if problems.is_empty() {
                r.fields_agreeing += 1;
            } else {
                r.disagreements.push(format!(
                    "field {path} = {}: {}",
                    f.number,
                    problems.join("; ")
                ));
            }
        }
        for s in &sdk_m.fields {
            if ours_m.field(s.number).is_none() {
                r.sdk_only_fields
                    .push(format!("{name}: {} = {}", describe(s), s.number));
            }
        }
    }
    for (name, ours_e) in &ours.enums {
        let Some(sdk_e) = sdk.enums.get(name) else {
            r.enums_absent.push(name.clone());
            continue;
        };
        r.enums_compared += 1;
        for (number, value) in &ours_e.values {
            match sdk_e.values.iter().find(|(n, _)| n == number) {
                None => r.values_absent.push(format!("{name}.{value} = {number}")),
                Some((_, s)) => {
                    r.enum_values_compared += 1;
                    if s != value {
                        r.disagreements.push(format!(
                            "enum value {name} = {number}: name ours {value}, SDK {s}"
                        ));
                    }
                }
            }
        }
        for (number, s) in &sdk_e.values {
            if !ours_e.values.iter().any(|(n, _)| n == number) {
                r.sdk_only_values.push(format!("{name}.{s} = {number}"));
            }
        }
    }
    for (name, ours_s) in &ours.services {
        let Some(sdk_s) = sdk.services.get(name) else {
            r.services_absent.push(name.clone());
            continue;
        };
        for m in &ours_s.methods {
            let Some(s) = sdk_s.methods.iter().find(|s| s.name == m.name) else {
                r.methods_absent.push(format!("{name}/{}", m.name));
                continue;
            };
            r.methods_compared += 1;
            if s != m {
                r.disagreements.push(format!(
                    "method {name}/{}: ours ({} -> {}, {:?}), SDK ({} -> {}, {:?})",
                    m.name, m.input, m.output, m.kind, s.input, s.output, s.kind
                ));
            }
        }
        for s in &sdk_s.methods {
            if !ours_s.methods.iter().any(|m| m.name == s.name) {
                r.sdk_only_methods.push(format!(
                    "{name}/{} ({} -> {}, {:?})",
                    s.name, s.input, s.output, s.kind
                ));
            }
        }
    }
    r
}

impl Report {
    /// The summary printed on every run.
    pub(crate) fn summary(&self, sdk: &Schema) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "SDK schema: {} messages, {} enums, {} services",
            sdk.messages.len(),
            sdk.enums.len(),
            sdk.services.len()
        ));
        line(format!("messages compared: {}", self.messages_compared));
        line(format!(
            "fields compared: {}, agreeing: {}",
            self.fields_compared, self.fields_agreeing
        ));
        line(format!(
            "enums compared: {}, enum values compared: {}",
            self.enums_compared, self.enum_values_compared
        ));
        line(format!(
            "service methods compared: {}",
            self.methods_compared
        ));
        line(format!("disagreements: {}", self.disagreements.len()));
        let lists: [(&str, &Vec<String>); 10] = [
            ("allowed exceptions", &self.exceptions_used),
            ("our messages absent from the SDK", &self.messages_absent),
            ("our fields absent from the SDK", &self.fields_absent),
            ("our enums absent from the SDK", &self.enums_absent),
            ("our enum values absent from the SDK", &self.values_absent),
            ("our services absent from the SDK", &self.services_absent),
            ("our methods absent from the SDK", &self.methods_absent),
            (
                "SDK methods of our services we lack",
                &self.sdk_only_methods,
            ),
            (
                "SDK enum values of our enums we lack",
                &self.sdk_only_values,
            ),
            (
                "SDK fields of our messages we do not declare",
                &self.sdk_only_fields,
            ),
        ];
        for (title, items) in lists {
            line(format!("{title}: {}", items.len()));
            for i in items {
                line(format!("  {i}"));
            }
        }
        out
    }

    /// The failure text: every disagreement on its own line.
    pub(crate) fn failure(&self) -> String {
        let mut out = format!(
            "{} disagreement(s) between proto/ and @cursor/sdk's schema:\n",
            self.disagreements.len()
        );
        for d in &self.disagreements {
            let _ = writeln!(out, "  {d}");
        }
        out
    }
}
