//! An OTLP/HTTP receiver for the trace tests: `POST /v1/traces` with a protobuf
//! `ExportTraceServiceRequest`, on a free port of the loopback interface, keeping every span
//! it is sent (with its resource's `service.name`) for the test to look through.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use tokio::task::JoinHandle;

/// How long [`Receiver::wait_for`] waits.
const WAIT: Duration = Duration::from_secs(30);

/// A span as received, with the service that sent it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `service.name` of its resource.
    pub service: String,
    /// The span.
    pub span: Span,
}

impl Received {
    /// The string value of attribute `key`, if the span has it.
    pub fn attribute(&self, key: &str) -> Option<String> {
        string_value(&self.span.attributes, key)
    }
}

/// The received spans.
type Spans = Arc<Mutex<Vec<Received>>>;

/// A running receiver; it stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:<port>`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    /// What it was sent.
    spans: Spans,
    /// The server.
    task: JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port for the OTLP receiver");
        let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
        let spans = Spans::default();
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(spans.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the receiver serves");
        });
        Self {
            endpoint,
            spans,
            task,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Received> {
        self.spans.lock().expect("not poisoned").clone()
    }

    /// The first span received that `matches`, waiting for it (up to [`WAIT`], then the test
    /// fails naming `what` and listing what did arrive).
    pub async fn wait_for(&self, what: &str, matches: impl Fn(&Received) -> bool) -> Received {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(found) = self.spans().into_iter().find(&matches) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; received: {:#?}",
                self.summary()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Name, trace id and parent of each span received, for failure messages.
    pub fn summary(&self) -> Vec<String> {
        self.spans()
            .iter()
            .map(|r| {
                format!(
                    "{} {} trace {} parent {}",
                    r.service,
                    r.span.name,
                    hex::encode(&r.span.trace_id),
                    hex::encode(&r.span.parent_span_id)
                )
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `POST /v1/traces`: keeps the spans of a protobuf export request.
async fn export(State(spans): State<Spans>, body: Bytes) -> impl IntoResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new()).into_response();
    };
    let mut kept = spans.lock().expect("not poisoned");
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| string_value(&r.attributes, "service.name"))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            kept.extend(scope.spans.into_iter().map(|span| Received {
                service: service.clone(),
                span,
            }));
        }
    }
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

/// The value of attribute `key` among `attributes`, as text (strings as they are, integers
/// in decimal).
fn string_value(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}
