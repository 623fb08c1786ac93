//! W3C trace context in Kafka headers: reading a message's `traceparent` (an OpenTelemetry
//! [`Extractor`] over rdkafka's headers), the new one `send` puts on each message it produces,
//! and the copy of a message's trace headers that its dead letter keeps. Needs no exporter:
//! `send` sets the header whether or not anything here exports spans.

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{SpanId, TraceId};
use rdkafka::message::{Header, Headers, OwnedHeaders};

/// The W3C header naming the trace and the parent span.
pub const TRACEPARENT: &str = "traceparent";

/// The W3C header carrying vendors' trace state beside it.
pub const TRACESTATE: &str = "tracestate";

/// A message's headers, read as a trace-context carrier: the first header of a name, its value
/// if it is UTF-8.
pub struct KafkaHeaders<'a, H: Headers>(pub &'a H);

impl<H: Headers> Extractor for KafkaHeaders<'_, H> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|header| header.key.eq_ignore_ascii_case(key))
            .and_then(|header| header.value)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|header| header.key).collect()
    }
}

/// A `traceparent` starting a new sampled trace: version 00, a random trace id and span id
/// (never the all-zero ids W3C calls invalid), flags 01.
pub fn new_traceparent() -> String {
    let trace = rand::random::<u128>().max(1);
    let span = rand::random::<u64>().max(1);
    format!("00-{}-{}-01", TraceId::from(trace), SpanId::from(span))
}

/// Headers holding a new [`new_traceparent`], for a message `send` produces.
pub fn new_trace_headers() -> OwnedHeaders {
    let traceparent = new_traceparent();
    OwnedHeaders::new_with_capacity(1).insert(Header {
        key: TRACEPARENT,
        value: Some(traceparent.as_str()),
    })
}

/// `to` with the `traceparent` and `tracestate` headers of `from` (as they were, bytes
/// unchanged), where it has them.
pub fn with_trace_headers<H: Headers>(mut to: OwnedHeaders, from: Option<&H>) -> OwnedHeaders {
    let Some(from) = from else {
        return to;
    };
    for name in [TRACEPARENT, TRACESTATE] {
        if let Some(header) = from.iter().find(|header| header.key == name) {
            to = to.insert(Header {
                key: name,
                value: header.value,
            });
        }
    }
    to
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::otel::remote_span;

    fn text_headers(headers: &OwnedHeaders) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value.unwrap_or_default());
                (h.key.to_owned(), value.into_owned())
            })
            .collect()
    }

    #[test]
    fn sends_traceparent_is_a_valid_sampled_w3c_header_and_new_each_time() {
        let headers = new_trace_headers();
        let [(name, value)] = &text_headers(&headers)[..] else {
            panic!("one header: {:?}", text_headers(&headers));
        };
        assert_eq!(name, TRACEPARENT);
        let parts: Vec<&str> = value.split('-').collect();
        assert_eq!(parts.len(), 4, "{value}");
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1].len(), 32, "{value}");
        assert_eq!(parts[2].len(), 16, "{value}");
        assert_eq!(parts[3], "01", "sampled");
        assert!(
            value
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "lower-case hex: {value}"
        );
        // The propagator the service reads it with accepts it as a sampled remote span.
        let span = remote_span(&KafkaHeaders(&headers)).expect("a valid traceparent");
        assert!(span.is_sampled());
        assert_eq!(span.trace_id().to_string(), parts[1]);
        assert_eq!(span.span_id().to_string(), parts[2]);
        assert_ne!(
            new_traceparent(),
            new_traceparent(),
            "a new trace per message"
        );
    }

    #[test]
    fn a_dead_letter_keeps_the_trace_headers_and_only_those() {
        let original = OwnedHeaders::new()
            .insert(Header {
                key: "x-other",
                value: Some("not copied"),
            })
            .insert(Header {
                key: TRACEPARENT,
                value: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            })
            .insert(Header {
                key: TRACESTATE,
                value: Some("vendor=abc"),
            });
        let start = OwnedHeaders::new().insert(Header {
            key: "reason",
            value: Some("bad"),
        });
        let copied = with_trace_headers(start, Some(&original));
        assert_eq!(
            text_headers(&copied),
            [
                ("reason".to_owned(), "bad".to_owned()),
                (
                    TRACEPARENT.to_owned(),
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()
                ),
                (TRACESTATE.to_owned(), "vendor=abc".to_owned()),
            ]
        );
        let none = with_trace_headers(OwnedHeaders::new(), None::<&OwnedHeaders>);
        assert_eq!(none.count(), 0);
    }
}
