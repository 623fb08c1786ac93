//! [`Secret`]: a setting that must never be shown. Its `Debug` prints `[redacted]`, so a
//! logged or printed settings struct carries none, and its flag is declared with
//! `hide_env_values`, so `--help` does not show the variable's value. Its parser accepts any
//! text: clap's error for a refused value quotes the value, so a secret is checked where it
//! is used, with a message that names the setting and not the value.

use std::fmt;

/// A secret setting's value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it (a comparison, a client's configuration).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// clap's parser of a secret: any text.
pub(super) fn parse_secret(value: &str) -> Result<Secret, String> {
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("hunter2-hunter2");
        let shown = format!("{secret:?} {:?}", Some(&secret));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert_eq!(secret.expose(), "hunter2-hunter2");
    }
}
