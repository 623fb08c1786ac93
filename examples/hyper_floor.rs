//! The floor under `serve`'s cache hits, for `make bench-http`: a bare hyper server (HTTP/1.1,
//! a tokio runtime with two threads, as `serve` has on two cores) that answers
//! `GET /api/order/{id}` from a map of the documents in memory, with the response headers of a
//! real hit of `serve`. What `serve` costs beyond it is what its own code costs: the
//! checks, the cache, the request id, the metrics and the access log; what is left of its gap
//! to nginx is hyper's and tokio's.
//!
//! `cargo run --release --example hyper_floor -- ADDR DIR HEADERS`: listens on `ADDR`, serves
//! each file of `DIR` under `/api/order/<file name>`, and answers with the headers of
//! `HEADERS` (the header block `curl -D` wrote for one hit of `serve`: its status line,
//! `content-length` and `date` are left out, as hyper writes its own). The same headers for
//! every answer, the request id among them: a little less work than `serve`'s, which makes one
//! per request.

use std::collections::HashMap;
use std::convert::Infallible;
use std::error::Error;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// The documents by path, and the headers of every answer.
struct Answers {
    /// Each document's bytes, by its path.
    documents: HashMap<String, Bytes>,
    /// The headers of a hit of `serve`, but its length and date.
    headers: HeaderMap,
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(dir), Some(headers)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: hyper_floor ADDR DIR HEADERS".into());
    };
    let answers = Arc::new(Answers {
        documents: documents(&dir)?,
        headers: headers_of(&std::fs::read_to_string(&headers)?)?,
    });
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(serve(&addr, answers))
}

/// Every file of `dir`, under `/api/order/<its name>`.
fn documents(dir: &str) -> Result<HashMap<String, Bytes>, Box<dyn Error>> {
    let mut documents = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| "a file name not in UTF-8")?;
        documents.insert(
            format!("/api/order/{name}"),
            Bytes::from(std::fs::read(entry.path())?),
        );
    }
    Ok(documents)
}

/// The headers of a `curl -D` header block, without its status line, `content-length` and
/// `date`.
fn headers_of(block: &str) -> Result<HeaderMap, Box<dyn Error>> {
    let mut headers = HeaderMap::new();
    for line in block.lines().skip(1) {
        let Some((name, value)) = line.trim_end().split_once(':') else {
            continue;
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes())?;
        if name != hyper::header::CONTENT_LENGTH && name != hyper::header::DATE {
            headers.append(name, HeaderValue::from_str(value.trim())?);
        }
    }
    Ok(headers)
}

/// Accepts connections on `addr` and answers each request from `answers`.
async fn serve(addr: &str, answers: Arc<Answers>) -> Result<(), Box<dyn Error>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let answers = answers.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let answer = answer(&answers, request.uri().path());
                async move { Ok::<_, Infallible>(answer) }
            });
            // A connection's end, or its error, ends only that connection.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The answer to a request for `path`: its document with the headers, or an empty 404.
fn answer(answers: &Answers, path: &str) -> Response<Full<Bytes>> {
    let Some(document) = answers.documents.get(path) else {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    let mut response = Response::new(Full::new(document.clone()));
    *response.headers_mut() = answers.headers.clone();
    response.headers_mut().insert(
        hyper::header::CONTENT_LENGTH,
        HeaderValue::from(document.len()),
    );
    response
}
