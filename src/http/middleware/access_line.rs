//! The access log's line, both ways: through `tracing` (the request's span, [`request_span`],
//! and the `access` event in it, [`access_event`]), or written straight into the access log's
//! buffer with no span or event behind it ([`AccessFields::write`]): the very line the
//! logger's text format writes for that event in that span (the test below holds the two side
//! by side), at a third of its cost.
//!
//! Why: through `tracing`, a cache hit's line cost about 2.5 to 3 us of CPU (a span in the
//! registry, its fields formatted, the event formatted through the generic visitor and writer
//! layers) beside 8.5 to 9.5 us for the whole answer without it (docs/benchmarks.md, "Issue
//! 16, third pass"). nginx's own access log costs it next to nothing.
//!
//! Used when the logger writes plain text and exports no traces
//! ([`crate::infra::telemetry::direct_access_log`]): with `LOG_FORMAT=json`, colours on a
//! terminal, or traces (whose span fields the line then shows too), the `access` event is
//! logged through `tracing` as before. `RUST_LOG` decides as it always did: a line is written
//! only if the `access` target is enabled at INFO.

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderValue, Method, Request, StatusCode, Uri};
use tracing::field::Empty;

use super::request_id::X_REQUEST_ID;
use crate::infra::access_writer::AccessWriter;

/// What a request's line says of it, taken when it arrives (the request itself is gone by
/// the time its answer is logged).
#[derive(Debug)]
pub struct AccessFields {
    /// Its method.
    method: Method,
    /// Its URI, for the path (a clone shares the request's bytes).
    uri: Uri,
    /// Its request id, as [`super::request_id`] settled it.
    request_id: Option<HeaderValue>,
}

impl AccessFields {
    /// The fields of `request`, whose request id is settled.
    pub fn of<B>(request: &Request<B>) -> Self {
        Self {
            method: request.method().clone(),
            uri: request.uri().clone(),
            request_id: request.headers().get(X_REQUEST_ID).cloned(),
        }
    }

    /// Writes the line of this request, matched to `route`, answered `status` after
    /// `latency`, to `out`.
    pub fn write(&self, out: &AccessWriter, route: &str, status: StatusCode, latency: Duration) {
        LINE.with_borrow_mut(|line| {
            line.clear();
            self.format(line, route, status, latency);
            out.push_line(line);
        });
    }

    /// The line, as the logger's text format (`tracing_subscriber`'s `Full`, without colours)
    /// writes the event of [`access_event`] inside the span of [`request_span`]:
    ///
    /// `2026-12-04T18:00:46.563978Z  INFO request{method=GET route="/api/order/{order_uid}"
    /// path=/api/order/b563feb7b2b84b6test request_id="3ea0..."}: access: answered status=200
    /// latency_ms=0.012` (on one line).
    fn format(&self, line: &mut Vec<u8>, route: &str, status: StatusCode, latency: Duration) {
        let request_id = self
            .request_id
            .as_ref()
            .and_then(|id| id.to_str().ok())
            .unwrap_or("");
        // Writing into a Vec cannot fail.
        let _ = write!(
            line,
            "{}  INFO request{{method={} route=",
            humantime::format_rfc3339_micros(SystemTime::now()),
            self.method
        );
        quoted(line, route);
        let _ = write!(line, " path={} request_id=", self.uri.path());
        quoted(line, request_id);
        let _ = writeln!(
            line,
            "}}: access: answered status={} latency_ms={:?}",
            status.as_u16(),
            latency_ms(latency)
        );
    }
}

/// The `latency_ms` field: milliseconds, to the microsecond.
pub fn latency_ms(latency: Duration) -> f64 {
    latency.as_micros() as f64 / 1e3
}

/// The access-log span of `request`, matched to `route`: its method, route, path and request
/// id (the one [`super::request_id`] settled on); with traces exported, the request's server
/// span. Its fields are evaluated only if the `access` target is enabled.
pub fn request_span<B>(request: &Request<B>, route: &'static str) -> tracing::Span {
    tracing::info_span!(
        target: "access",
        "request",
        method = %request.method(),
        route,
        path = %request.uri().path(),
        request_id = request
            .headers()
            .get(X_REQUEST_ID)
            .and_then(|id| id.to_str().ok())
            .unwrap_or(""),
        otel.name = Empty,
        otel.kind = Empty,
        otel.status_code = Empty,
        http.request.method = Empty,
        http.route = Empty,
        http.response.status_code = Empty,
    )
}

/// The access-log event of an answer, through `tracing` (when the line is not written
/// straight, [`AccessFields::write`]).
pub fn access_event(status: StatusCode, latency: Duration) {
    tracing::info!(
        target: "access",
        status = status.as_u16(),
        latency_ms = latency_ms(latency),
        "answered"
    );
}

thread_local! {
    /// This thread's line being formatted: its memory is kept for the next one.
    static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `value` as the logger writes a string field: in quotes, escaped as Rust's `Debug` escapes
/// it (so that no client's bytes can forge a line or a terminal sequence). Printable ASCII
/// other than `"` and `\` stands as it is, which is what ids and route templates are made of.
fn quoted(line: &mut Vec<u8>, value: &str) {
    if value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        line.push(b'"');
        line.extend_from_slice(value.as_bytes());
        line.push(b'"');
    } else {
        let _ = write!(line, "{value:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line the logger's text format writes for `request`'s access event, and the line
    /// written straight, each through the access log's writer as the service has it.
    fn both_lines(
        request: &Request<()>,
        route: &'static str,
        status: StatusCode,
        latency: Duration,
    ) -> (String, String) {
        let logged = AccessWriter::unstarted_for_tests();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(logged.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = request_span(request, route);
            let _entered = span.enter();
            access_event(status, latency);
        });
        let written = AccessWriter::unstarted_for_tests();
        AccessFields::of(request).write(&written, route, status, latency);
        let text =
            |writer: &AccessWriter| String::from_utf8(writer.pending_for_tests()).expect("UTF-8");
        (text(&logged), text(&written))
    }

    /// A line without its timestamp, which must be one (RFC 3339, to the microsecond).
    fn after_timestamp(line: &str) -> &str {
        let (timestamp, rest) = line.split_once(' ').expect("a timestamp first");
        assert_eq!(
            timestamp.len(),
            "2026-12-04T18:00:46.563978Z".len(),
            "{line}"
        );
        humantime::parse_rfc3339(timestamp).expect("an RFC 3339 timestamp");
        rest
    }

    fn request(method: &str, uri: &str, request_id: Option<&[u8]>) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(id) = request_id {
            builder = builder.header(X_REQUEST_ID, HeaderValue::from_bytes(id).expect("a value"));
        }
        builder.body(()).expect("a request")
    }

    #[test]
    fn the_direct_line_is_the_loggers_line() {
        let cases = [
            request("GET", "/api/order/b563feb7b2b84b6test", Some(b"3ea06acf")),
            request(
                "HEAD",
                "/api/order/x?debug=1",
                Some(b"with \"quotes\" and \\"),
            ),
            request("BREW", "/pot%20of/coffee", None),
            request("GET", "/", Some(b"tab\there")),
            request("GET", "/", Some("caf\u{e9}".as_bytes())),
            request("GET", "/", Some(b"\xff not UTF-8")),
            request("GET", "/", Some(b"")),
        ];
        for (i, request) in cases.iter().enumerate() {
            let route = if i == 0 {
                "/api/order/{order_uid}"
            } else {
                "unmatched"
            };
            for (status, latency) in [
                (StatusCode::OK, Duration::from_micros(12)),
                (StatusCode::NOT_FOUND, Duration::from_micros(1_234_567)),
                (StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO),
                (StatusCode::OK, Duration::from_nanos(999)),
            ] {
                let (logged, written) = both_lines(request, route, status, latency);
                assert_eq!(
                    after_timestamp(&written),
                    after_timestamp(&logged),
                    "{request:?}"
                );
            }
        }
    }

    #[test]
    fn what_a_client_sends_is_escaped_within_its_quotes() {
        let (_, line) = both_lines(
            &request("GET", "/", Some(b"a\t\"b\\")),
            "unmatched",
            StatusCode::OK,
            Duration::ZERO,
        );
        assert!(line.contains(r#" request_id="a\t\"b\\"}: "#), "{line:?}");
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
    }
}
