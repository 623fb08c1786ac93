//! Operator access: the endpoints that show orders' personal data in bulk (the lists, the
//! live stream, the rejected payloads) answer only a request that presents the operator
//! token, and `GET /api/order/{id}` too when so configured. A request presents it as
//! `Authorization: Bearer <token>` (scripts, `curl`) or as the `operator_token` cookie, which
//! the page sets when the operator signs in and which the browser also sends with the event
//! stream (an `EventSource` cannot set headers). The token is compared in constant time
//! (`subtle`); a request without it, or with another, is 401 `unauthorized` and learns nothing
//! about the orders. With no token configured, these endpoints answer 401 to everyone.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use crate::http::SharedState;
use crate::http::error::ApiError;
use crate::infra::config::Secret;

/// The cookie the page keeps the token in.
pub const COOKIE: &str = "operator_token";

/// The fewest characters a token may have.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The most characters a token may have.
pub const MAX_TOKEN_CHARS: usize = 256;

/// Who may call the operator endpoints. Its `Debug` shows no token: a [`Secret`] prints
/// `[redacted]`.
#[derive(Clone, Debug, Default)]
pub struct OperatorAccess {
    /// The token, if one is configured.
    token: Option<Secret>,
    /// Whether an order lookup by id needs the token too.
    lookup_needs_token: bool,
}

/// A configured token that cannot be one; the message names the setting, not the value.
#[derive(Debug, thiserror::Error)]
#[error(
    "OPERATOR_TOKEN must be {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} characters of \
     A-Z a-z 0-9 - . _ ~ + / = (e.g. `openssl rand -hex 32`)"
)]
pub struct InvalidToken;

impl OperatorAccess {
    /// Access with `token` (none: nobody is let in) and whether lookups by id need it. A
    /// token must be usable as a bearer token and as a cookie value.
    pub fn new(token: Option<&Secret>, lookup_needs_token: bool) -> Result<Self, InvalidToken> {
        if let Some(token) = token {
            let value = token.expose();
            let fits = (MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
            if !fits {
                return Err(InvalidToken);
            }
        }
        Ok(Self {
            token: token.cloned(),
            lookup_needs_token,
        })
    }

    /// Whether a token is configured.
    pub fn is_configured(&self) -> bool {
        self.token.is_some()
    }

    /// `Ok` if `headers` present the token, else [`ApiError::Unauthorized`].
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(token) = &self.token else {
            return Err(ApiError::Unauthorized);
        };
        let expected = token.expose().as_bytes();
        // Every presented value is compared, so the time does not tell which one matched.
        let matched = presented(headers).fold(0u8, |matched, given| {
            matched | given.as_bytes().ct_eq(expected).unwrap_u8()
        });
        if matched == 1 {
            Ok(())
        } else {
            Err(ApiError::Unauthorized)
        }
    }

    /// `Ok` if an order lookup may go on: always, unless lookups need the token.
    pub fn check_lookup(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.lookup_needs_token {
            self.check(headers)
        } else {
            Ok(())
        }
    }
}

/// The tokens a request presents: the bearer credentials of its `Authorization` headers and
/// the values of its `operator_token` cookies.
fn presented(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| {
            let (scheme, credentials) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| credentials.trim())
        });
    let cookies = headers
        .get_all(header::COOKIE)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        });
    bearer.chain(cookies)
}

/// A handler argument that lets the request in only with the operator token.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<SharedState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        state.operator.check(&parts.headers).map(|()| Self)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::{OperatorAccess, Secret};
    use crate::http::error::ApiError;

    const TOKEN: &str = "s3cret-operator-token";

    fn access(lookup: bool) -> OperatorAccess {
        OperatorAccess::new(Some(&Secret::new(TOKEN)), lookup).expect("a valid token")
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name, HeaderValue::from_str(value).expect("a header value"));
        }
        map
    }

    fn refused(result: Result<(), ApiError>) -> bool {
        matches!(result, Err(ApiError::Unauthorized))
    }

    #[test]
    fn the_token_is_taken_as_a_bearer_token_or_the_cookie() {
        let access = access(false);
        for ok in [
            headers(&[(header::AUTHORIZATION, &format!("Bearer {TOKEN}"))]),
            headers(&[(header::AUTHORIZATION, &format!("bearer  {TOKEN} "))]),
            headers(&[(header::COOKIE, &format!("lang=en; operator_token={TOKEN}"))]),
            // A wrong value beside the right one does not hide it.
            headers(&[
                (header::AUTHORIZATION, "Bearer nope-nope-nope-nope"),
                (header::COOKIE, &format!("operator_token={TOKEN}")),
            ]),
        ] {
            assert!(access.check(&ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn anything_else_is_unauthorized() {
        let access = access(false);
        for bad in [
            headers(&[]),
            headers(&[(header::AUTHORIZATION, &format!("Basic {TOKEN}"))]),
            headers(&[(header::AUTHORIZATION, &format!("Bearer {TOKEN}x"))]),
            headers(&[(header::AUTHORIZATION, &format!("Bearer {}", &TOKEN[1..]))]),
            headers(&[(header::AUTHORIZATION, "Bearer")]),
            headers(&[(header::COOKIE, &format!("other_token={TOKEN}"))]),
            headers(&[(header::COOKIE, &format!("xoperator_token={TOKEN}"))]),
        ] {
            assert!(refused(access.check(&bad)), "{bad:?}");
        }
    }

    #[test]
    fn without_a_configured_token_nobody_is_let_in() {
        let closed = OperatorAccess::new(None, false).expect("no token is valid");
        assert!(!closed.is_configured());
        let given = headers(&[(header::AUTHORIZATION, "Bearer ")]);
        assert!(refused(closed.check(&given)));
        assert!(refused(closed.check(&HeaderMap::new())));
    }

    #[test]
    fn lookups_need_the_token_only_when_told() {
        assert!(access(false).check_lookup(&HeaderMap::new()).is_ok());
        assert!(refused(access(true).check_lookup(&HeaderMap::new())));
        let signed = headers(&[(header::AUTHORIZATION, &format!("Bearer {TOKEN}"))]);
        assert!(access(true).check_lookup(&signed).is_ok());
    }

    #[test]
    fn a_token_that_is_short_or_not_header_safe_is_refused_without_showing_it() {
        for bad in [
            "short",
            "has space in it......",
            "semi;colon;in;it;long",
            "é-é-é-é-é-é-é-é-é",
        ] {
            let error = OperatorAccess::new(Some(&Secret::new(bad)), false)
                .expect_err("refused")
                .to_string();
            assert!(error.contains("OPERATOR_TOKEN"), "{error}");
            assert!(!error.contains(bad), "{error}");
        }
        let debug = format!("{:?}", access(true));
        assert!(!debug.contains(TOKEN), "{debug}");
    }
}
