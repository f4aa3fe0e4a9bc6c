//! What Sentry is told about what it did not get. Our transactions skip the SDK's client, to
//! which a transport reports its losses and which attaches them to its next envelope (a
//! "client report"); so the sender asks the client for an envelope of its own when
//! transactions were lost and nothing else carried the report.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loopscope_tests::{dsn_at, reporting_to, start};
use serde_json::Value;

/// A Sentry that answers every envelope 429 with a transaction rate limit, keeping the
/// bodies: requests may come pipelined, so each is read whole before the next.
fn rate_limiting_sentry() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dsn = dsn_at(listener.local_addr().expect("address"));
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let kept = kept.clone();
            std::thread::spawn(move || {
                let mut out = conn.try_clone().expect("clone");
                let mut reader = BufReader::new(conn);
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    kept.lock()
                        .expect("bodies")
                        .push(String::from_utf8_lossy(&body).into_owned());
                    let reply = "HTTP/1.1 429 Too Many Requests\r\n\
                                 X-Sentry-Rate-Limits: 60:transaction:organization\r\n\
                                 content-length: 0\r\n\r\n";
                    if out.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (dsn, bodies)
}

/// The `discarded_events` of every client report in `bodies`.
fn discarded(bodies: &[String]) -> Vec<Value> {
    bodies
        .iter()
        .flat_map(|body| body.lines())
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|item| item["discarded_events"].as_array().cloned())
        .flatten()
        .collect()
}

#[test]
fn transactions_held_back_by_a_rate_limit_are_reported_as_lost() {
    let _machine = loopscope_tests::machine::shared();
    let (dsn, bodies) = rate_limiting_sentry();
    let svc = start(
        "worker",
        &reporting_to(&dsn, "1.0", &["--handling", "async"]),
    );
    // The first transaction is answered with the limit; wait for it, then send five more.
    assert_eq!(svc.get("/work/io?ms=1").0, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while bodies.lock().expect("bodies").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !bodies.lock().expect("bodies").is_empty(),
        "the first transaction never came"
    );
    for _ in 0..5 {
        assert_eq!(svc.get("/work/io?ms=1").0, 200);
    }
    // Within about a second (the sender reports at most once a second), the report comes.
    let deadline = Instant::now() + Duration::from_secs(20);
    let lost = loop {
        let lost: u64 = discarded(&bodies.lock().expect("bodies"))
            .iter()
            .filter(|d| d["category"] == "transaction" && d["reason"] == "ratelimit_backoff")
            .filter_map(|d| d["quantity"].as_u64())
            .sum();
        if lost >= 5 || Instant::now() > deadline {
            break lost;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let received = bodies.lock().expect("bodies").clone();
    assert_eq!(
        lost, 5,
        "transactions reported lost; Sentry received {received:#?}"
    );
    let transactions = received
        .iter()
        .filter(|b| b.contains("\"type\":\"transaction\""))
        .count();
    assert_eq!(
        transactions, 1,
        "only the first transaction was sent: {received:#?}"
    );
}
