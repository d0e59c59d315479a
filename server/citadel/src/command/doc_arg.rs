//! The shape of one COMMAND DOCS argument, shared by the hand-written
//! docs code and the generated argument table.

/// One argument of a COMMAND DOCS `arguments` list (the table is
/// docs_args.rs, generated from redis-server's own replies).
pub struct Arg {
    pub name: &'static str,
    /// Redis's `type` field.
    pub kind: &'static str,
    pub display_text: Option<&'static str>,
    pub key_spec_index: Option<i64>,
    pub token: Option<&'static str>,
    pub summary: Option<&'static str>,
    pub since: Option<&'static str>,
    pub deprecated_since: Option<&'static str>,
    pub flags: &'static [&'static str],
    /// Set for `oneof` and `block` arguments.
    pub arguments: Option<&'static [Arg]>,
}

impl Arg {
    pub const EMPTY: Arg = Arg {
        name: "",
        kind: "",
        display_text: None,
        key_spec_index: None,
        token: None,
        summary: None,
        since: None,
        deprecated_since: None,
        flags: &[],
        arguments: None,
    };
}
