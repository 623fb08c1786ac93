//! Value parsers of the settings: each refuses a bad value with a message clap prints beside
//! the flag and its environment variable.

use std::time::Duration;

use bytesize::ByteSize;

/// clap's error for a refused value that must not be quoted because it may hold `may_hold`
/// (a password, a secret): it names the flag (or `fallback`, its variable) and says why,
/// never what the value was.
pub(super) fn refused_unshown(
    cmd: &clap::Command,
    arg: Option<&clap::Arg>,
    fallback: &str,
    why: &str,
    may_hold: &str,
) -> clap::Error {
    let name = arg.map_or_else(|| fallback.to_owned(), ToString::to_string);
    clap::Error::raw(
        clap::error::ErrorKind::ValueValidation,
        format!(
            "invalid value for '{name}': {why} (the value is not shown: it may hold {may_hold})\n"
        ),
    )
    .with_cmd(cmd)
}

/// A connection URL sqlx accepts. A parser of its own rather than a function: clap's error
/// for a value a function refuses quotes the value, and this one may hold a password.
#[derive(Clone, Copy, Debug)]
pub(super) struct DatabaseUrlParser;

impl clap::builder::TypedValueParser for DatabaseUrlParser {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let refuse = |why: String| refused_unshown(cmd, arg, "DATABASE_URL", &why, "a password");
        let value = value
            .to_str()
            .ok_or_else(|| refuse("not UTF-8".to_owned()))?;
        if !(value.starts_with("postgres://") || value.starts_with("postgresql://")) {
            return Err(refuse(
                "must start with postgres:// or postgresql://".to_owned(),
            ));
        }
        value
            .parse::<sqlx::postgres::PgConnectOptions>()
            .map(|_| value.to_owned())
            .map_err(|e| refuse(format!("not a PostgreSQL URL: {e}")))
    }
}

/// Any text but the empty one.
pub(super) fn parse_non_empty(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(value.to_owned())
    }
}

/// A human duration: `10m`, `90s`, `1h 30m`.
pub(super) fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value).map_err(|e| format!("not a duration like 10m or 90s: {e}"))
}

/// A consumer group session timeout: a duration of 1 s to 1 h, in whole milliseconds.
pub(super) fn parse_session_timeout(value: &str) -> Result<Duration, String> {
    let timeout = parse_duration(value)?;
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&timeout) {
        return Err("must be from 1s to 1h".to_owned());
    }
    Ok(timeout)
}

/// A size in bytes: `256MiB`, `1GB`, `1048576`.
pub(super) fn parse_bytes(value: &str) -> Result<u64, String> {
    value
        .parse::<ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|e| format!("not a size like 256MiB: {e}"))
}
