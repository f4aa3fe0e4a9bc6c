//! The report every work response carries, and its JSON, written without a serializer pass
//! over fields that never change: per thread, the `"thread":…,"thread_id":…` and
//! `"event_loop":…` members are escaped once (by serde_json) and cached; the keys and the
//! `&'static str` values are ASCII identifiers written as they are; numbers and the
//! optional backend body go through serde_json. In the profile, serde_json's derive spent
//! ~5,000 instructions per report, most of it escaping the same keys and names again.
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use common::timestamp::Timestamp;
use contract::{Choice, Handling, Kind};
use serde::Serialize;
use serde_json::Value;

use crate::cpu::thread_id;

thread_local! {
    /// `"thread":"<name>","thread_id":<id>` of this thread: fixed for the thread's life.
    static THREAD: Arc<str> = Arc::from(member_pair(
        "thread",
        std::thread::current().name().unwrap_or("unnamed"),
        "thread_id",
        thread_id(),
    ));
    /// `"event_loop":"<label>"` on actix worker threads (labelled before they serve).
    static EVENT_LOOP: Arc<str> = Arc::from(member("event_loop", &common::current_worker_label()));
}

/// The current thread's cached `"thread":…,"thread_id":…` members.
pub(crate) fn this_thread() -> Arc<str> {
    THREAD.with(Arc::clone)
}

/// The current event loop's cached `"event_loop":…` member.
pub(crate) fn this_event_loop() -> Arc<str> {
    EVENT_LOOP.with(Arc::clone)
}

pub(crate) fn pid() -> u32 {
    // glibc's getpid is a system call on every use; the pid does not change.
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// `"key":<value as JSON>`, escaped by serde_json.
fn member(key: &str, value: &(impl Serialize + ?Sized)) -> String {
    let value = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
    format!("\"{key}\":{value}")
}

fn member_pair(k1: &str, v1: &str, k2: &str, v2: i64) -> String {
    format!("{},{}", member(k1, v1), member(k2, &v2))
}

/// Where and when the work ran and what it took.
pub(crate) struct WorkReport {
    /// An ASCII identifier, like the names of the handling and the kind.
    pub(crate) service: &'static str,
    pub(crate) handling: Handling,
    pub(crate) kind: Kind,
    pub(crate) requested_ms: Option<u64>,
    /// The thread the work ran on (an actix worker or a blocking-pool thread), as members.
    pub(crate) thread: Arc<str>,
    /// The actix worker (event loop) that accepted the request, as a member.
    pub(crate) event_loop: Arc<str>,
    pub(crate) pid: u32,
    pub(crate) queued: Duration,
    pub(crate) took: Duration,
    pub(crate) started_at: Timestamp,
    pub(crate) finished_at: Timestamp,
    pub(crate) backend: Option<Value>,
}

/// Milliseconds, rounded to the microsecond.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl WorkReport {
    /// The report as a JSON object, members in a fixed order.
    pub(crate) fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(320);
        let mut raw = |s: &str| out.extend_from_slice(s.as_bytes());
        raw("{\"service\":\"");
        raw(self.service);
        raw("\",\"handling\":\"");
        raw(self.handling.as_str());
        raw("\",\"kind\":\"");
        raw(self.kind.as_str());
        raw("\",\"requested_ms\":");
        serde_json::to_writer(&mut out, &self.requested_ms)?;
        out.push(b',');
        out.extend_from_slice(self.thread.as_bytes());
        out.push(b',');
        out.extend_from_slice(self.event_loop.as_bytes());
        out.extend_from_slice(b",\"pid\":");
        serde_json::to_writer(&mut out, &self.pid)?;
        out.extend_from_slice(b",\"queued_ms\":");
        serde_json::to_writer(&mut out, &millis(self.queued))?;
        out.extend_from_slice(b",\"service_ms\":");
        serde_json::to_writer(&mut out, &millis(self.took))?;
        // Timestamps are digits and punctuation: nothing to escape.
        out.extend_from_slice(b",\"started_at\":\"");
        out.extend_from_slice(self.started_at.as_bytes());
        out.extend_from_slice(b"\",\"finished_at\":\"");
        out.extend_from_slice(self.finished_at.as_bytes());
        out.push(b'"');
        if let Some(backend) = &self.backend {
            out.extend_from_slice(b",\"backend\":");
            serde_json::to_writer(&mut out, backend)?;
        }
        out.push(b'}');
        Ok(out)
    }

    /// `200 application/json` with the report.
    pub(crate) fn into_response(self) -> HttpResponse {
        match self.to_json() {
            // A static header value: `ContentType::json()` formats a Mime on every call.
            Ok(body) => HttpResponse::Ok()
                .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
                .body(body),
            // Writing into a Vec does not fail; a Value always serializes.
            Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use super::*;

    fn report(backend: Option<Value>) -> WorkReport {
        WorkReport {
            service: "worker",
            handling: Handling::Async,
            kind: Kind::Cpu,
            requested_ms: Some(0),
            thread: this_thread(),
            event_loop: Arc::from(member("event_loop", "0")),
            pid: 42,
            queued: Duration::from_nanos(1_234_567),
            took: Duration::ZERO,
            started_at: Timestamp::at(UNIX_EPOCH + Duration::from_millis(1_764_511_501_123)),
            finished_at: Timestamp::at(UNIX_EPOCH + Duration::from_millis(1_764_511_501_124)),
            backend,
        }
    }

    #[test]
    fn the_json_has_every_member_in_order() {
        let body = report(None).to_json().expect("serializes");
        let text = std::str::from_utf8(&body).expect("utf-8");
        assert!(
            text.starts_with(
                r#"{"service":"worker","handling":"async","kind":"cpu","requested_ms":0,"thread":""#
            ),
            "{text}"
        );
        let value: Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(value["thread_id"], json!(thread_id()));
        assert_eq!(value["event_loop"], "0");
        assert_eq!(value["pid"], 42);
        assert_eq!(value["queued_ms"], 1.235);
        assert_eq!(value["service_ms"], 0.0);
        assert_eq!(value["started_at"], "2025-11-30T14:05:01.123Z");
        assert_eq!(value["finished_at"], "2025-11-30T14:05:01.124Z");
        assert!(value.get("backend").is_none());
        assert_eq!(value.as_object().map(|o| o.len()), Some(12));
    }

    /// What the worker writes by hand is what the gateway, loadgen and the tests read.
    #[test]
    fn the_json_reads_back_as_the_contracts_work_report() {
        for backend in [None, Some(json!({"latency_ms": 5}))] {
            let body = report(backend.clone()).to_json().expect("serializes");
            let read: contract::WorkReport =
                serde_json::from_slice(&body).expect("a contract::WorkReport");
            assert_eq!(read.handling, Handling::Async);
            assert_eq!(read.kind, Kind::Cpu);
            assert_eq!(read.requested_ms, Some(0));
            assert_eq!(read.thread_id, thread_id());
            assert_eq!(read.event_loop, "0");
            assert_eq!(read.queued_ms, 1.235);
            assert_eq!(read.started_at, "2025-11-30T14:05:01.123Z");
            assert_eq!(read.backend, backend);
            let again = serde_json::to_value(&read).expect("serializes");
            let original: Value = serde_json::from_slice(&body).expect("valid JSON");
            assert_eq!(again, original, "no member lost or added on the way");
        }
    }

    #[test]
    fn backend_bodies_and_odd_thread_names_are_escaped() {
        let body = report(Some(json!({"ok": "a\"b"})))
            .to_json()
            .expect("serializes");
        let value: Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(value["backend"]["ok"], "a\"b");
        assert_eq!(value["requested_ms"], 0);

        let odd = std::thread::Builder::new()
            .name("we\"ird\\name\n".into())
            .spawn(|| report(None).to_json().expect("serializes"))
            .expect("thread starts")
            .join()
            .expect("no panic");
        let value: Value = serde_json::from_slice(&odd).expect("valid JSON");
        assert_eq!(value["thread"], "we\"ird\\name\n");
    }
}
