//! Request ids: the `x-request-id` header, kept when a client sends a plain short one,
//! generated ([`RandomRequestId`]) when it sends none or an unfit one
//! ([`drop_unfit_request_id`]), and returned on the response. tower-http's request-id layers
//! do the setting and returning; this file says what an id is, and settles it at once for the
//! hot route ([`settle_request_id`]), which answers without those layers.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};

/// The request id header.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-chosen request id kept; a longer one is replaced by a generated id.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// Makes a request id where the request has none: 32 random hexadecimal digits.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(random_request_id()))
    }
}

/// 32 random hexadecimal digits.
fn random_request_id() -> HeaderValue {
    let id = format!("{:032x}", rand::random::<u128>());
    HeaderValue::try_from(id).expect("hexadecimal digits are a valid header value")
}

/// What the request-id layers do to a request, at once: drops an unfit `x-request-id`
/// ([`drop_unfit_request_id`]), generates one where there is none; returns the id, for the
/// response.
pub fn settle_request_id(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get(X_REQUEST_ID)
        && is_fit(id)
    {
        return id.clone();
    }
    let id = random_request_id();
    headers.insert(X_REQUEST_ID, id.clone());
    id
}

/// Whether a client's request id is kept: 1 to [`MAX_REQUEST_ID_LEN`] bytes of
/// `A-Z a-z 0-9 . _ - :`.
fn is_fit(id: &HeaderValue) -> bool {
    let id = id.as_bytes();
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// Removes a client's `x-request-id` that is empty, longer than [`MAX_REQUEST_ID_LEN`] bytes,
/// or holds anything but `A-Z a-z 0-9 . _ - :`, so that a generated one takes its place: the
/// id goes into every log line of the request and back to the client, and a client must not
/// be able to write arbitrary text there.
pub fn drop_unfit_request_id<B>(mut request: Request<B>) -> Request<B> {
    if request
        .headers()
        .get(X_REQUEST_ID)
        .is_some_and(|id| !is_fit(id))
    {
        request.headers_mut().remove(X_REQUEST_ID);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_short_plain_request_id_is_kept() {
        let with_id = |id: &str| {
            let request = Request::builder()
                .header(X_REQUEST_ID, id)
                .body(())
                .expect("a request");
            drop_unfit_request_id(request)
                .headers()
                .get(X_REQUEST_ID)
                .map(|id| id.to_str().expect("ASCII").to_owned())
        };
        assert_eq!(with_id("abc-123_x.y:z").as_deref(), Some("abc-123_x.y:z"));
        assert_eq!(with_id(&"a".repeat(64)).as_deref(), Some(&*"a".repeat(64)));
        for unfit in ["", "has space", "quote\"", "<script>", &"a".repeat(65)] {
            assert_eq!(with_id(unfit), None, "{unfit:?} must be dropped");
        }
    }

    #[test]
    fn generated_request_ids_are_32_hex_digits_and_differ() {
        let request = Request::new(());
        let mut make = RandomRequestId;
        let a = make.make_request_id(&request).expect("an id");
        let b = make.make_request_id(&request).expect("an id");
        let a = a.header_value().to_str().expect("ASCII").to_owned();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b.header_value().to_str().expect("ASCII"));
    }
}
