//! An extra librdkafka property (`--kafka-property key=value`, `KAFKA_PROPERTIES`): its
//! parsing, which never shows the value (it may be a secret).

use super::super::parse::refused_unshown;
use super::super::secret::Secret;

/// One librdkafka property of `--kafka-property key=value`: the key, and its value kept as a
/// secret (it may be one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaProperty {
    /// The property's name, such as `client.id`.
    pub key: String,
    /// Its value; never shown.
    pub value: Secret,
}

/// The parser of a `key=value` property. A parser of its own rather than a function: clap's
/// error for a value a function refuses quotes the value, and this one may hold a secret.
#[derive(Clone, Copy, Debug)]
pub(super) struct PropertyParser;

impl clap::builder::TypedValueParser for PropertyParser {
    type Value = KafkaProperty;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<KafkaProperty, clap::Error> {
        let refuse = |why: &str| refused_unshown(cmd, arg, "KAFKA_PROPERTIES", why, "a secret");
        let text = value.to_str().ok_or_else(|| refuse("not UTF-8"))?;
        parse_property(text).map_err(refuse)
    }
}

/// `key=value`: the key is what comes before the first `=`, trimmed; it must be a property
/// name (letters, digits, `.`, `_`, `-`). The value is the rest, as it is.
pub(super) fn parse_property(text: &str) -> Result<KafkaProperty, &'static str> {
    let (key, value) = text
        .split_once('=')
        .ok_or("expected key=value, such as client.id=orders-1")?;
    let key = key.trim();
    if key.is_empty() {
        return Err("a property needs a name before '='");
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("a property's name has only letters, digits, '.', '_' and '-'");
    }
    Ok(KafkaProperty {
        key: key.to_owned(),
        value: Secret::new(value),
    })
}
