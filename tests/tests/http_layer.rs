//! Answers actix-http gives without calling our service (issue 11, items 2 and 6): a request
//! it cannot parse (400), a head over its 128 KiB buffer (431) and a head that does not arrive
//! in time (408) are counted, logged and answered with a JSON body, on the real worker.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use contract::ErrorBody;
use loopscope_tests::metrics::sample;
use loopscope_tests::{Service, start};

/// Sends `request` raw and reads until the server closes (at most 10 s): status, headers, body.
fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before it has read everything (the 431).
    let _ = stream.write_all(request);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    // A reset after the answer is fine: what arrived before it counts.
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn unmatched(svc: &Service, method: &str, status: &str) -> f64 {
    sample(
        &svc.metrics(),
        "loopscope_http_requests_total",
        &[
            ("endpoint", "UNMATCHED"),
            ("method", method),
            ("status", status),
        ],
    )
    .unwrap_or(0.0)
}

/// Access-log lines of the HTTP layer with this status, once there are `want` (or after 3 s:
/// the log reaches us through a pipe and a reader thread).
fn logged(svc: &Service, status: u16, want: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let lines = logged_now(svc, status);
        if lines.len() >= want || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn logged_now(svc: &Service, status: u16) -> Vec<serde_json::Value> {
    svc.logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["target"] == "access" && l["answered_by"] == "actix-http")
        .filter(|l| l["status"] == status)
        .collect()
}

/// The answer is JSON with our error shape, and its request id is in the header and the log.
fn assert_json_answer(head: &str, body: &str, code: &str, log: &[serde_json::Value]) {
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let json: ErrorBody = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(json.error, code, "{json:?}");
    let id = json.request_id.as_deref().expect("request_id");
    assert!(head.contains(&format!("x-request-id: {id}")), "{head}");
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["request_id"], id);
    assert_eq!(log[0]["route"], "UNMATCHED");
}

#[test]
fn answers_of_the_http_layer_are_counted_logged_and_json() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start(
        "worker",
        &[
            "--handling",
            "async",
            "--workers",
            "1",
            "--client-request-timeout-ms",
            "600",
        ],
    );

    // A request line that is not HTTP: 400, method unknown.
    let before = unmatched(&svc, "other", "400");
    let (status, head, body) = raw(svc.app, b"GARBAGE\r\n\r\n");
    assert_eq!(status, 400, "{head}");
    assert_eq!(unmatched(&svc, "other", "400") - before, 1.0);
    assert_json_answer(&head, &body, "bad_request", &logged(&svc, 400, 1));

    // 140 KB of headers: over actix's fixed 128 KiB head buffer (70 KB is accepted by actix
    // and reaches our routes), so 431; the request line was read, hence GET.
    let before = unmatched(&svc, "GET", "431");
    let mut big = b"GET /work/io?ms=1 HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..140 {
        big.extend_from_slice(format!("x-pad-{i}: {}\r\n", "a".repeat(1000)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    let (status, head, body) = raw(svc.app, &big);
    assert_eq!(status, 431, "{head}");
    assert_eq!(unmatched(&svc, "GET", "431") - before, 1.0);
    let log = logged(&svc, 431, 1);
    assert_json_answer(&head, &body, "request_header_fields_too_large", &log);
    assert_eq!(log[0]["path"], "/work/io?ms=1");

    // Half a head, then silence past the head timeout: 408.
    let before = unmatched(&svc, "GET", "408");
    let started = Instant::now();
    let (status, head, body) = raw(svc.app, b"GET /work/io?ms=1 HTTP/1.1\r\nHost: x\r\n");
    assert_eq!(status, 408, "{head}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(unmatched(&svc, "GET", "408") - before, 1.0);
    let log = logged(&svc, 408, 1);
    assert_json_answer(&head, &body, "request_timeout", &log);
    assert!(log[0]["duration_ms"].as_f64().unwrap() >= 300.0, "{log:?}");

    // The admin port's HTTP layer answers JSON too (its requests are never counted).
    let app_400 = unmatched(&svc, "other", "400");
    let (status, head, body) = raw(svc.admin.unwrap(), b"GARBAGE\r\n\r\n");
    assert_eq!(status, 400, "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(body.contains("\"error\":\"bad_request\""), "{body}");
    assert_eq!(unmatched(&svc, "other", "400"), app_400, "not counted");

    // Negative control: our own 400 (a bad parameter) is counted under its route, once, and
    // not taken for the HTTP layer's.
    let (status, head, body) = raw(
        svc.app,
        b"GET /work/io?ms=abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 400, "{head}");
    assert!(body.contains("\"param\":\"ms\""), "{body}");
    assert_eq!(
        logged(&svc, 400, 2).len(),
        1,
        "our own 400 is not the HTTP layer's"
    );
    assert_eq!(
        sample(
            &svc.metrics(),
            "loopscope_http_requests_total",
            &[("endpoint", "/work/io"), ("status", "400")],
        ),
        Some(1.0)
    );
}

#[test]
fn a_bad_request_after_a_good_one_on_the_same_connection_keeps_the_first_answer() {
    let _machine = loopscope_tests::machine::shared();
    let svc = start("worker", &["--handling", "async", "--workers", "1"]);
    let mut stream = TcpStream::connect(svc.app).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /work/io?ms=0 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Wait for the first answer, so the bad request follows it on the connection.
    let mut first = [0u8; 4096];
    let n = stream.read(&mut first).unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    stream.write_all(b"NOT HTTP AT ALL\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("HTTP/1.1 400"), "{rest}");
    assert!(rest.contains("\"error\":\"bad_request\""), "{rest}");
    assert_eq!(logged(&svc, 400, 1).len(), 1);
}
