//! The request guard: refuses, before routing and before a request takes a concurrency slot,
//! a request whose headers are too large (431) or whose target holds a control character
//! (400). hyper refuses worse requests itself (raw control bytes, URIs over 64 KiB, more than
//! 100 headers, headers over ~400 KiB) with a bare status; these checks bite first for
//! everything hyper lets through, so that the answer is a JSON [`ApiError`].

use axum::http::{HeaderMap, HeaderName, HeaderValue, Request};
use percent_encoding::percent_decode;
use tower::filter::Predicate;

use super::request_id::{MAX_REQUEST_ID_LEN, X_REQUEST_ID};
use crate::http::error::ApiError;

/// A [`Predicate`] for [`tower::filter::Filter`]: passes a request on unchanged or refuses it
/// with an [`ApiError`].
#[derive(Clone, Copy, Debug)]
pub struct RequestGuard {
    /// The largest sum of header name and value lengths accepted, in bytes.
    max_header_bytes: usize,
}

impl RequestGuard {
    /// A guard refusing headers larger than `max_header_bytes` in total.
    pub fn new(max_header_bytes: usize) -> Self {
        Self { max_header_bytes }
    }
}

impl<B> Predicate<Request<B>> for RequestGuard {
    type Request = Request<B>;

    fn check(&mut self, request: Request<B>) -> Result<Request<B>, tower::BoxError> {
        if header_bytes(request.headers()) > self.max_header_bytes {
            return Err(ApiError::HeadersTooLarge.into());
        }
        let target = request.uri().path_and_query().map_or("", |pq| pq.as_str());
        if has_control_character(target.as_bytes()) {
            return Err(ApiError::InvalidTarget.into());
        }
        Ok(request)
    }
}

/// The sum of header name and value lengths that the limit counts: every header but a short
/// request id.
pub fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .filter(|(name, value)| !is_short_request_id(name, value))
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

/// A request id of at most [`MAX_REQUEST_ID_LEN`] bytes is left out of the header limit:
/// the service adds one (32 bytes) to a request that has none before this guard runs, and that
/// must not push a request at the limit over it (a longer or odd one was already replaced by
/// [`super::request_id::drop_unfit_request_id`]).
fn is_short_request_id(name: &HeaderName, value: &HeaderValue) -> bool {
    *name == X_REQUEST_ID && value.len() <= MAX_REQUEST_ID_LEN
}

/// Whether `target` holds a control character (C0 or DEL), raw or percent-encoded once:
/// decoding once gives every raw byte as it is and every valid `%XX` as the byte it encodes
/// (no allocation: the decoder is an iterator over `target`).
pub fn has_control_character(target: &[u8]) -> bool {
    percent_decode(target).any(is_control)
}

/// A C0 control character or DEL.
fn is_control(byte: u8) -> bool {
    byte < 0x20 || byte == 0x7f
}
