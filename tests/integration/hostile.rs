//! Hostile requests over real TCP against the running service: long ids, path traversal,
//! SQL metacharacters, control characters, unicode, unsupported methods and oversized headers.
//! Each is refused with the 4xx its row states, as a JSON error with the security headers;
//! none is ever a 5xx.
//!
//! Most rows go through reqwest. Rows whose bytes reqwest would change (it resolves `..`,
//! turns `\` into `/`, percent-encodes spaces and non-ASCII) are written by hand on a raw
//! TCP stream, and so are targets longer than reqwest sends (64 KiB). A few rows are refused by hyper itself before the service sees them (a URI
//! over 64 KiB, raw control bytes, tabs or spaces in the target, more than 100 headers): hyper
//! answers those with a bare status and no body, which the service cannot change; for them
//! the row checks the status only.

use std::time::Duration;

use reqwest::{Method, Url};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::app::TestApp;

/// How a row's request is sent.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// reqwest, with the target sent exactly as written (checked).
    Reqwest,
    /// An HTTP/1.1 request written by hand on a TCP stream, bytes exactly as written.
    Raw,
}

/// What a row must get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// This status with a JSON body `{"error": code}` and the security headers.
    Json(u16, &'static str),
    /// This status from hyper itself, before the service: no body to check.
    Hyper(u16),
}

/// One hostile request.
struct Case {
    /// What the row tries.
    name: &'static str,
    /// The request method.
    method: &'static str,
    /// The request target, sent as is.
    target: String,
    /// Extra request headers.
    headers: Vec<(String, String)>,
    /// How it is sent.
    via: Via,
    /// The answer it must get.
    expect: Expect,
}

/// A case with no extra headers.
fn case(name: &'static str, method: &'static str, target: &str, via: Via, expect: Expect) -> Case {
    Case {
        name,
        method,
        target: target.to_owned(),
        headers: Vec::new(),
        via,
        expect,
    }
}

/// An answer, whichever way the request went.
struct Answer {
    /// The status code.
    status: u16,
    /// Headers, names in lower case.
    headers: Vec<(String, String)>,
    /// The body.
    body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name`.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every hostile request and what it must get.
#[rustfmt::skip] // one row a line
fn table() -> Vec<Case> {
    use Expect::{Hyper, Json};
    use Via::{Raw, Reqwest};

    let invalid_id = Json(400, "invalid_id");
    let no_route = Json(404, "no_route");
    let invalid_target = Json(400, "invalid_target");
    let method_not_allowed = Json(405, "method_not_allowed");
    let too_large = Json(431, "headers_too_large");
    let long_id = |n: usize| format!("/api/order/{}", "a".repeat(n));

    let mut cases = vec![
        // Long ids.
        case("id of 65 chars", "GET", &long_id(65), Reqwest, invalid_id),
        case("id of 1000 chars", "GET", &long_id(1000), Reqwest, invalid_id),
        case("id of 60 000 chars", "GET", &long_id(60_000), Reqwest, invalid_id),
        case("id of 100 000 chars", "GET", &long_id(100_000), Raw, Hyper(414)),
        // Path traversal.
        case("../ at the root", "GET", "/../../etc/passwd", Raw, no_route),
        case("../ under /assets", "GET", "/assets/../../etc/passwd", Raw, no_route),
        case("../ as the id", "GET", "/api/order/../../../etc/passwd", Raw, no_route),
        case("../ after a file", "GET", "/assets/app.js/../../Cargo.toml", Raw, no_route),
        case("%2e%2e/ segments", "GET", "/%2e%2e/%2e%2e/etc/passwd", Raw, no_route),
        case("%2e%2e%2f under /assets", "GET", "/assets/%2e%2e%2fCargo.toml", Reqwest, no_route),
        case("%2e%2e%2f as the id", "GET", "/api/order/%2e%2e%2f%2e%2e%2fetc%2fpasswd", Reqwest, invalid_id),
        case("..%2f as the id", "GET", "/api/order/..%2f..%2fetc%2fpasswd", Reqwest, invalid_id),
        case("..%2f under /assets", "GET", "/assets/..%2f..%2fCargo.toml", Reqwest, no_route),
        case("double-encoded %252e as the id", "GET", "/api/order/%252e%252e%252fetc%252fpasswd", Reqwest, invalid_id),
        case("double-encoded %252e under /assets", "GET", "/assets/%252e%252e%252fCargo.toml", Reqwest, no_route),
        case("//etc/passwd", "GET", "//etc/passwd", Raw, no_route),
        case("absolute-form with ../", "GET", "http://localhost/../../etc/passwd", Raw, no_route),
        case("backslashes raw", "GET", "/assets\\..\\..\\etc\\passwd", Raw, no_route),
        case("backslashes raw as the id", "GET", "/api/order/..\\..\\etc", Raw, invalid_id),
        case("backslashes %5c under /assets", "GET", "/assets/..%5c..%5cCargo.toml", Reqwest, no_route),
        case("backslashes %5c as the id", "GET", "/api/order/..%5c..%5cetc%5cpasswd", Reqwest, invalid_id),
        case("a source file", "GET", "/src/main.rs", Reqwest, no_route),
        case("Cargo.toml", "GET", "/Cargo.toml", Reqwest, no_route),
        case("the static dir", "GET", "/static/index.html", Reqwest, no_route),
        case(".env", "GET", "/.env", Reqwest, no_route),
        // SQL metacharacters.
        case("' OR 1=1--", "GET", "/api/order/'%20OR%201=1--", Reqwest, invalid_id),
        case("%27 OR '1'='1", "GET", "/api/order/%27%20OR%20%271%27=%271", Reqwest, invalid_id),
        case(";DROP TABLE orders", "GET", "/api/order/;DROP%20TABLE%20orders", Reqwest, invalid_id),
        case("1';DROP TABLE orders;--", "GET", "/api/order/1%27;DROP%20TABLE%20orders;--", Reqwest, invalid_id),
        case("\" OR \"\"=\"", "GET", "/api/order/%22%20OR%20%22%22=%22", Reqwest, invalid_id),
        case("SQL in the query is ignored", "GET", "/api/order/known?id=%27%20OR%201=1--", Reqwest, Json(404, "not_found")),
        // Control characters.
        case("%00 as the id", "GET", "/api/order/%00", Reqwest, invalid_target),
        case("%00 after a valid id", "GET", "/api/order/abc%00", Reqwest, invalid_target),
        case("%0a in the id", "GET", "/api/order/abc%0adef", Reqwest, invalid_target),
        case("%1b escape sequence", "GET", "/api/order/%1b%5b2J", Reqwest, invalid_target),
        case("%7f in the id", "GET", "/api/order/%7f", Reqwest, invalid_target),
        case("%00 in the query", "GET", "/?q=%00", Reqwest, invalid_target),
        case("CRLF injection in the query", "GET", "/health/live?x=%0d%0aSet-Cookie:%20a=b", Reqwest, invalid_target),
        case("raw 0x01 in the target", "GET", "/api/order/a\u{1}b", Raw, Hyper(400)),
        case("raw tab in the target", "GET", "/api/order/a\tb", Raw, Hyper(400)),
        case("raw DEL in the target", "GET", "/api/order/a\u{7f}b", Raw, Hyper(400)),
        case("raw space in the target", "GET", "/api/order/a b", Raw, Hyper(400)),
        // Unicode and broken encodings.
        case("Cyrillic id", "GET", "/api/order/%D0%B7%D0%B0%D0%BA%D0%B0%D0%B7", Reqwest, invalid_id),
        case("emoji id", "GET", "/api/order/%F0%9F%98%80", Reqwest, invalid_id),
        case("overlong UTF-8 ../", "GET", "/api/order/%C0%AE%C0%AE%C0%AF", Reqwest, invalid_id),
        case("fullwidth ../", "GET", "/api/order/%EF%BC%8E%EF%BC%8E%EF%BC%8F", Reqwest, invalid_id),
        case("right-to-left override", "GET", "/api/order/%E2%80%AEabc", Reqwest, invalid_id),
        case("combining accent", "GET", "/api/order/a%CC%81", Reqwest, invalid_id),
        case("invalid UTF-8", "GET", "/api/order/%FF%FE", Reqwest, invalid_id),
        case("raw UTF-8 bytes as the id", "GET", "/api/order/заказ", Raw, invalid_id),
        case("raw UTF-8 bytes in a path", "GET", "/заказ/../..", Raw, no_route),
        case("a broken percent escape", "GET", "/api/order/%zz%", Raw, invalid_id),
        case("unicode unknown path", "GET", "/%D0%B7", Reqwest, no_route),
    ];
    // Unsupported methods.
    for target in ["/api/order/x", "/"] {
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"] {
            cases.push(case("unsupported method", method, target, Reqwest, method_not_allowed));
        }
    }
    cases.push(case("POST to an unknown path", "POST", "/api/nothing", Reqwest, no_route));
    // Oversized headers.
    cases.push(Case {
        headers: vec![("x-padding".to_owned(), "a".repeat(64 * 1024))],
        ..case("a 64 KiB header value", "GET", "/api/order/x", Reqwest, too_large)
    });
    cases.push(Case {
        headers: (0..40).map(|i| (format!("x-padding-{i}"), "a".repeat(500))).collect(),
        ..case("40 headers of 500 bytes", "GET", "/", Reqwest, too_large)
    });
    cases.push(Case {
        headers: vec![("cookie".to_owned(), "a".repeat(20 * 1024))],
        ..case("a 20 KiB cookie, raw", "GET", "/", Raw, too_large)
    });
    cases.push(Case {
        headers: (0..150).map(|i| (format!("x-h{i}"), "1".to_owned())).collect(),
        ..case("150 small headers", "GET", "/", Raw, Hyper(431))
    });
    cases
}

/// Sends `case` through reqwest, checking that reqwest sends the target unchanged.
async fn send_reqwest(app: &TestApp, case: &Case) -> Answer {
    let url = format!("{}{}", app.base, case.target);
    let parsed = Url::parse(&url).expect("a URL");
    assert_eq!(
        parsed.as_str(),
        url,
        "{}: reqwest would change this target; send it raw",
        case.name
    );
    let method = Method::from_bytes(case.method.as_bytes()).expect("a method");
    let mut request = app.http.request(method, parsed);
    for (name, value) in &case.headers {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|error| panic!("{}: {}", case.name, error.without_url()));
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_owned(), value)
        })
        .collect();
    let body = response.bytes().await.expect("a body").to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// Writes `case` as an HTTP/1.1 request on a fresh TCP stream and reads the answer.
async fn send_raw(app: &TestApp, case: &Case) -> Answer {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
        case.method, case.target
    );
    for (name, value) in &case.headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request is written");
    let mut raw = Vec::new();
    // A guard against a hang only: every answer here closes the connection at once.
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("the service closes the connection")
        .expect("the answer is read");
    parse_response(&raw, case.name)
}

/// Parses an HTTP/1.1 response read to the end of the connection.
fn parse_response(raw: &[u8], name: &str) -> Answer {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "{name}: no end of headers in {:?}",
                String::from_utf8_lossy(raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{name}: bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest, name)
    } else {
        rest.to_vec()
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// Decodes a chunked body.
fn dechunk(mut rest: &[u8], name: &str) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or_else(|| panic!("{name}: a chunk size line"));
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("{name}: chunk size {size_text:?}"));
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// What is wrong with `answer` for `case`, if anything.
fn check(case: &Case, answer: &Answer) -> Vec<String> {
    let mut problems = Vec::new();
    if answer.status >= 500 {
        problems.push(format!("a server error {}", answer.status));
    }
    match case.expect {
        Expect::Hyper(status) => {
            if answer.status != status {
                problems.push(format!("status {} instead of {status}", answer.status));
            }
            // hyper's bare answer; a body means the service answered: make the row Json.
            if !answer.body.is_empty() {
                problems.push(format!(
                    "a body {:?} where hyper answers with none",
                    String::from_utf8_lossy(&answer.body)
                ));
            }
        }
        Expect::Json(status, code) => {
            if answer.status != status {
                problems.push(format!("status {} instead of {status}", answer.status));
            }
            if answer.header("content-type") != Some("application/json") {
                problems.push(format!("content-type {:?}", answer.header("content-type")));
            }
            match serde_json::from_slice::<serde_json::Value>(&answer.body) {
                Ok(json) if json["error"] == code && json["message"].is_string() => {}
                _ => problems.push(format!(
                    "body {:?} instead of error {code}",
                    String::from_utf8_lossy(&answer.body)
                )),
            }
            for (header, expected) in [
                ("x-content-type-options", "nosniff"),
                ("referrer-policy", "no-referrer"),
                ("x-frame-options", "DENY"),
                ("cross-origin-resource-policy", "same-origin"),
            ] {
                if answer.header(header) != Some(expected) {
                    problems.push(format!("{header}: {:?}", answer.header(header)));
                }
            }
            let csp = answer.header("content-security-policy").unwrap_or_default();
            if !csp.contains("default-src 'self'") || !csp.contains("script-src 'self'") {
                problems.push(format!("content-security-policy: {csp:?}"));
            }
            if status == 405 {
                let mut allow: Vec<_> = answer
                    .header("allow")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .collect();
                allow.sort_unstable();
                if allow != ["GET", "HEAD"] {
                    problems.push(format!("allow: {:?}", answer.header("allow")));
                }
            }
        }
    }
    problems
}

#[tokio::test]
async fn hostile_requests_are_refused_with_json_4xx_and_never_5xx() {
    let app = TestApp::spawn().await;
    let mut failures = Vec::new();
    for case in table() {
        let answer = match case.via {
            Via::Reqwest => send_reqwest(&app, &case).await,
            Via::Raw => send_raw(&app, &case).await,
        };
        let shown: String = case.target.chars().take(60).collect();
        let shown = shown.escape_debug().to_string();
        let code = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .map(|json| json["error"].to_string())
            .unwrap_or_default();
        println!(
            "{:>3} {:<8} {:<36} {shown} {code}",
            answer.status, case.method, case.name
        );
        for problem in check(&case, &answer) {
            failures.push(format!(
                "{} ({} {shown}): {problem}",
                case.name, case.method
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The service is still up and the orders table still there.
    assert_eq!(app.get("/health/live").await.status(), 200);
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(app.store.pool())
        .await
        .expect("the orders table is still there");
    assert_eq!(orders, 0);
    app.stop_and_drop().await;
}

#[tokio::test]
async fn head_is_answered_without_a_body() {
    let app = TestApp::spawn().await;
    for (target, status) in [("/", 200), ("/api/order/unknown", 404), ("/nowhere", 404)] {
        let response = app
            .http
            .head(format!("{}{target}", app.base))
            .send()
            .await
            .expect("the service answers");
        assert_eq!(response.status(), status, "{target}");
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{target}"
        );
        let body = response.bytes().await.expect("a body");
        assert!(body.is_empty(), "{target}");
    }
    app.stop_and_drop().await;
}
