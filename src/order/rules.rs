//! The contract's field rules that are more than a length or a range: each function is a
//! garde custom validator, and its error message states the rule it enforces.

/// What a garde custom validator returns.
type Check = garde::Result;

/// A string field of `min..=max` characters; when `min > 0` it must not be blank either.
/// No string may hold U+0000: PostgreSQL cannot store it in JSONB.
pub fn text(min: usize, max: usize) -> impl FnOnce(&str, &()) -> Check {
    move |value, _| {
        let chars = value.chars().count();
        if chars < min || chars > max {
            return Err(garde::Error::new(format!(
                "must be {min}..={max} characters, got {chars}"
            )));
        }
        if min > 0 && value.trim().is_empty() {
            return Err(garde::Error::new("must not be blank"));
        }
        no_nul(value)
    }
}

/// `1..=64` characters of `A-Z a-z 0-9 _ -`: the rule for `order_uid`, also applied to ids in
/// URLs before any lookup.
pub fn order_uid(value: &str, _: &()) -> Check {
    if is_valid_order_uid(value) {
        Ok(())
    } else {
        Err(garde::Error::new(
            "must be 1..=64 characters of A-Z a-z 0-9 _ -",
        ))
    }
}

/// Whether `value` is a well-formed `order_uid`.
pub fn is_valid_order_uid(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `+` optional, then 7..=15 digits.
pub fn phone(value: &str, _: &()) -> Check {
    let digits = value.strip_prefix('+').unwrap_or(value);
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(garde::Error::new(
            "must be '+' optional, then 7..=15 digits",
        ))
    }
}

/// 1..=16 characters of letters, digits, space or `-`.
pub fn zip(value: &str, _: &()) -> Check {
    let chars = value.chars().count();
    if (1..=16).contains(&chars)
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-')
    {
        Ok(())
    } else {
        Err(garde::Error::new(
            "must be 1..=16 characters of letters, digits, space or '-'",
        ))
    }
}

/// A valid e-mail address of at most 254 characters.
pub fn email(value: &str, _: &()) -> Check {
    if value.chars().count() > 254 {
        return Err(garde::Error::new("must be at most 254 characters"));
    }
    garde::rules::email::parse_email(value)
        .map_err(|e| garde::Error::new(format!("must be a valid e-mail address: {e}")))
}

/// Three upper-case ASCII letters (ISO 4217 form).
pub fn currency(value: &str, _: &()) -> Check {
    ascii_class(
        value,
        3,
        3,
        |b| b.is_ascii_uppercase(),
        "three upper-case letters",
    )
}

/// Two lower-case ASCII letters.
pub fn locale(value: &str, _: &()) -> Check {
    ascii_class(
        value,
        2,
        2,
        |b| b.is_ascii_lowercase(),
        "two lower-case letters",
    )
}

/// `min..=max` ASCII digits.
pub fn digits(min: usize, max: usize) -> impl FnOnce(&str, &()) -> Check {
    move |value, _| ascii_class(value, min, max, |b| b.is_ascii_digit(), "digits")
}

/// An RFC 3339 timestamp.
pub fn rfc3339(value: &str, _: &()) -> Check {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|_| ())
        .map_err(|e| garde::Error::new(format!("must be an RFC 3339 timestamp: {e}")))
}

/// `min..=max` ASCII bytes, each accepted by `class`.
fn ascii_class(value: &str, min: usize, max: usize, class: fn(&u8) -> bool, what: &str) -> Check {
    if (min..=max).contains(&value.len()) && value.bytes().all(|b| class(&b)) {
        Ok(())
    } else if min == max {
        Err(garde::Error::new(format!("must be {min} {what}")))
    } else {
        Err(garde::Error::new(format!("must be {min}..={max} {what}")))
    }
}

/// Refuses U+0000, which PostgreSQL's JSONB cannot hold.
fn no_nul(value: &str) -> Check {
    if value.contains('\0') {
        Err(garde::Error::new("must not contain U+0000"))
    } else {
        Ok(())
    }
}
