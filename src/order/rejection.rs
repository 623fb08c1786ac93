//! Why a message did not become a stored order: the rule it broke and the field it broke it
//! in. Every rejection is recorded (see `store::rejected`), never dropped.

use std::fmt;

/// The rule a rejected message broke. [`RejectKind::code`] is the stable machine name kept in
/// the `rejected.reason_code` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectKind {
    /// The value is empty or null (a tombstone).
    EmptyMessage,
    /// The value is larger than the contract's 1 MiB.
    TooLarge,
    /// The value is not UTF-8.
    NotUtf8,
    /// The value is not well-formed JSON.
    MalformedJson,
    /// The value is JSON, but not an object.
    NotObject,
    /// A field the contract does not know.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// The same field twice in one object.
    DuplicateField,
    /// A value of the wrong JSON type (a float for an integer, a number as a string, null...).
    TypeError,
    /// A value of the right type that breaks the field's rule.
    InvalidValue,
    /// Fields that disagree with each other (sums that do not add up).
    Inconsistent,
    /// An `order_uid` already stored with different content.
    Conflict,
    /// A valid order PostgreSQL refused to store for a reason in its data (SQLSTATE class 22
    /// or 23: a constraint or trigger of the database that the contract does not have).
    StoreRefused,
}

impl RejectKind {
    /// Every kind, for tests, metrics and documentation.
    pub const ALL: [RejectKind; 13] = [
        Self::EmptyMessage,
        Self::TooLarge,
        Self::NotUtf8,
        Self::MalformedJson,
        Self::NotObject,
        Self::UnknownField,
        Self::MissingField,
        Self::DuplicateField,
        Self::TypeError,
        Self::InvalidValue,
        Self::Inconsistent,
        Self::Conflict,
        Self::StoreRefused,
    ];

    /// The stable snake_case name of the rule.
    pub fn code(self) -> &'static str {
        match self {
            Self::EmptyMessage => "empty_message",
            Self::TooLarge => "too_large",
            Self::NotUtf8 => "not_utf8",
            Self::MalformedJson => "malformed_json",
            Self::NotObject => "not_object",
            Self::UnknownField => "unknown_field",
            Self::MissingField => "missing_field",
            Self::DuplicateField => "duplicate_field",
            Self::TypeError => "type_error",
            Self::InvalidValue => "invalid_value",
            Self::Inconsistent => "inconsistent",
            Self::Conflict => "conflict",
            Self::StoreRefused => "store_refused",
        }
    }

    /// The rule's name as the contract writes it (`unknown field`, `empty message`...).
    pub fn label(self) -> &'static str {
        match self {
            Self::EmptyMessage => "empty message",
            Self::TooLarge => "too large",
            Self::NotUtf8 => "not UTF-8",
            Self::MalformedJson => "malformed JSON",
            Self::NotObject => "not an object",
            Self::UnknownField => "unknown field",
            Self::MissingField => "missing field",
            Self::DuplicateField => "duplicate field",
            Self::TypeError => "type error",
            Self::InvalidValue => "invalid value",
            Self::Inconsistent => "inconsistent",
            Self::Conflict => "conflict",
            Self::StoreRefused => "store refused",
        }
    }
}

/// A rejected message's reason: the rule, the field (a path such as `items[0].price`) when
/// there is one, and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The rule that was broken.
    pub kind: RejectKind,
    /// Where it was broken, as a path from the top of the order.
    pub field: Option<String>,
    /// What was wrong, for a person; empty when the rule says it all.
    pub detail: String,
}

impl Rejection {
    /// A rejection of the whole message, not of one field.
    pub fn message(kind: RejectKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            field: None,
            detail: detail.into(),
        }
    }

    /// The rejection of an order whose id is stored with different content.
    pub fn conflict(uid: &str) -> Self {
        Self::field(
            RejectKind::Conflict,
            "order_uid",
            format!("{uid} is already stored with different content"),
        )
    }

    /// The rejection of a valid order PostgreSQL refused: `why` is its SQLSTATE and primary
    /// message (never the failing row, which is the order's content).
    pub fn store_refused(why: impl fmt::Display) -> Self {
        Self::message(RejectKind::StoreRefused, why.to_string())
    }

    /// A rejection naming the field at `path`.
    pub fn field(kind: RejectKind, path: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind,
            field: Some(path.into()),
            detail: detail.into(),
        }
    }
}

/// Renders as `<rule>[ <field>][: <detail>]`, e.g.
/// `invalid value delivery.phone: must be '+' optional, then 7..=15 digits`.
impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.label())?;
        if let Some(field) = &self.field {
            write!(f, " {field}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}
