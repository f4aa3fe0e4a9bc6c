//! A [`Finished`] transaction as a Sentry envelope, written on the sender's thread straight
//! into the round's buffer: the item into a buffer kept from one to the next (its length
//! goes first, in the item header), strings escaped by serde_json, times from integers.
//! The SDK's parser reads it back in the tests, field by field.
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::context::{hex as hex32, hex64};
use super::transaction::{Finished, FinishedSpan, Ids};
use crate::timestamp::MicrosTimestamp;

/// Appends the envelope of `t` to `out`, using `item` as scratch space.
pub(crate) fn write_envelope(t: &Finished, item: &mut Vec<u8>, out: &mut Vec<u8>) {
    item.clear();
    write_item(t, item);
    let event_id = hex32(t.event_id);
    out.extend_from_slice(b"{\"event_id\":\"");
    out.extend_from_slice(&event_id);
    out.extend_from_slice(b"\",\"trace\":{\"trace_id\":");
    hex_str(out, &hex32(t.ids.trace));
    out.extend_from_slice(b",\"public_key\":");
    json(out, t.constant.public_key.as_str());
    // As the SDK states them: strings. No rate when the caller decided (it is the caller's).
    if let Some(rate) = t.sample_rate {
        let _ = write!(out, ",\"sample_rate\":\"{rate}\"");
    }
    let _ = write!(
        out,
        ",\"sampled\":\"true\"}}}}\n{{\"type\":\"transaction\",\"length\":{}}}\n",
        item.len()
    );
    out.extend_from_slice(item);
    out.push(b'\n');
}

fn write_item(t: &Finished, out: &mut Vec<u8>) {
    let e = &t.ending;
    out.extend_from_slice(b"{\"event_id\":\"");
    out.extend_from_slice(&hex32(t.event_id));
    out.extend_from_slice(b"\",\"type\":\"transaction\",\"transaction\":");
    match &e.route_name {
        Some(name) => {
            json(out, name.as_str());
            out.extend_from_slice(b",\"transaction_info\":{\"source\":\"route\"}");
        }
        None => out.extend_from_slice(b"\"http.server\""),
    }
    out.push(b',');
    out.extend_from_slice(t.constant.fields.as_bytes());
    out.extend_from_slice(b",\"tags\":{");
    out.extend_from_slice(t.constant.tags.as_bytes());
    for (i, (key, value)) in e.tags.iter().enumerate() {
        if i > 0 || !t.constant.tags.is_empty() {
            out.push(b',');
        }
        json(out, key);
        out.push(b':');
        json(out, value.as_str());
    }
    out.extend_from_slice(b"},\"start_timestamp\":");
    timestamp(out, t.start);
    out.extend_from_slice(b",\"timestamp\":");
    rfc3339(out, t.end);
    out.extend_from_slice(b",\"contexts\":{\"trace\":{\"type\":\"trace\",");
    write_ids(&t.ids, out);
    out.extend_from_slice(b",\"op\":\"http.server\",\"status\":");
    json(out, &e.status);
    out.extend_from_slice(b"}}");
    if let Some(r) = &e.request {
        out.extend_from_slice(b",\"request\":{\"url\":");
        json(out, r.url.as_str());
        out.extend_from_slice(b",\"method\":");
        json(out, r.method.as_str());
        if let Some(q) = &r.query_string {
            out.extend_from_slice(b",\"query_string\":");
            json(out, q.as_str());
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"spans\":[");
    for (i, span) in t.spans.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_span(span, out);
    }
    out.push(b']');
    if t.dropped_spans > 0 {
        let _ = write!(out, ",\"extra\":{{\"dropped_spans\":{}}}", t.dropped_spans);
    }
    out.push(b'}');
}

fn write_span(s: &FinishedSpan, out: &mut Vec<u8>) {
    out.push(b'{');
    write_ids(&s.ids, out);
    out.extend_from_slice(b",\"op\":");
    json(out, s.op);
    out.extend_from_slice(b",\"description\":");
    json(out, s.description.as_str());
    if let Some(status) = &s.status {
        out.extend_from_slice(b",\"status\":");
        json(out, status);
    }
    out.extend_from_slice(b",\"start_timestamp\":");
    timestamp(out, s.start);
    out.extend_from_slice(b",\"timestamp\":");
    rfc3339(out, s.end);
    out.push(b'}');
}

/// `"trace_id":…,"span_id":…[,"parent_span_id":…]`.
fn write_ids(ids: &Ids, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\"trace_id\":");
    hex_str(out, &hex32(ids.trace));
    out.extend_from_slice(b",\"span_id\":");
    hex_str(out, &hex64(ids.span));
    if let Some(parent) = ids.parent {
        out.extend_from_slice(b",\"parent_span_id\":");
        hex_str(out, &hex64(parent));
    }
}

/// Hex digits as a JSON string (nothing to escape).
fn hex_str(out: &mut Vec<u8>, digits: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(digits);
    out.push(b'"');
}

/// `value` as JSON (strings escaped); the types written here cannot fail to serialize.
fn json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    let _ = serde_json::to_writer(&mut *out, value);
}

/// A start: seconds since the epoch with microseconds, as the SDK writes `start_timestamp`.
fn timestamp(out: &mut Vec<u8>, at: SystemTime) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let _ = write!(out, "{}.{:06}", since.as_secs(), since.subsec_micros());
}

/// An end: RFC 3339 with microseconds, as the SDK writes `timestamp` (its parser, and so
/// its tests, take nothing else there).
fn rfc3339(out: &mut Vec<u8>, at: SystemTime) {
    out.push(b'"');
    out.extend_from_slice(MicrosTimestamp::at(at).as_bytes());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;
    use std::time::Duration;

    use sentry::protocol::{EnvelopeItem, SpanId, SpanStatus, TraceId};

    use super::*;
    use crate::sentry::transaction::{Constant, Ending, RequestLine};

    fn finished(dropped_spans: u32, query: Option<&str>) -> Finished {
        let start = UNIX_EPOCH + Duration::from_micros(1_796_068_623_279_299);
        let trace = u128::from_be_bytes([0x71; 16]);
        let span = u64::from_be_bytes([0x14; 8]);
        Finished {
            constant: Arc::new(Constant {
                fields: r#""platform":"native","release":"loopscope@0.1.0+abc","environment":"local","server_name":"vm","sdk":{"name":"sentry.rust","version":"0.49.5"}"#.into(),
                tags: r#""service":"worker","handling":"async""#.into(),
                public_key: "public".into(),
            }),
            event_id: 0xce4c3f17_35c5_4549_84de_e146d3ef4361,
            ids: Ids {
                trace,
                span,
                parent: Some(u64::from_be_bytes([0x3a; 8])),
            },
            sample_rate: Some(0.1),
            start,
            end: start + Duration::from_micros(140),
            ending: Ending {
                route_name: Some("GET /work/cpu".into()),
                status: SpanStatus::Ok,
                tags: vec![
                    ("kind", "cpu".into()),
                    ("request_id", "my\"id".into()),
                    ("status", "200".into()),
                ],
                request: Some(RequestLine {
                    url: "http://localhost:1/work/cpu?ms=0".into(),
                    method: "GET".into(),
                    query_string: query.map(str::to_owned),
                }),
            },
            spans: vec![FinishedSpan {
                ids: Ids {
                    trace,
                    span: u64::from_be_bytes([0xd6; 8]),
                    parent: Some(span),
                },
                op: "work",
                description: "cpu".into(),
                status: Some(SpanStatus::DeadlineExceeded),
                start: start + Duration::from_micros(40),
                end: start + Duration::from_micros(100),
            }],
            dropped_spans,
        }
    }

    fn envelope(t: &Finished) -> Vec<u8> {
        let (mut item, mut out) = (Vec::new(), Vec::new());
        write_envelope(t, &mut item, &mut out);
        out
    }

    #[test]
    fn the_sdk_reads_back_every_field_a_triager_sees() {
        let bytes = envelope(&finished(0, Some("ms=0")));
        let parsed = sentry::Envelope::from_slice(&bytes).unwrap();
        let Some(EnvelopeItem::Transaction(tx)) = parsed.items().next() else {
            panic!("not a transaction: {}", String::from_utf8_lossy(&bytes));
        };
        assert_eq!(tx.name.as_deref(), Some("GET /work/cpu"));
        assert_eq!(
            tx.event_id.to_string(),
            "ce4c3f17-35c5-4549-84de-e146d3ef4361"
        );
        assert_eq!(tx.release.as_deref(), Some("loopscope@0.1.0+abc"));
        assert_eq!(tx.environment.as_deref(), Some("local"));
        assert_eq!(tx.server_name.as_deref(), Some("vm"));
        let tags: Vec<(&str, &str)> = tx
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            tags,
            [
                ("handling", "async"),
                ("kind", "cpu"),
                ("request_id", "my\"id"),
                ("service", "worker"),
                ("status", "200"),
            ]
        );
        // A float of seconds holds microseconds to within a fraction of one.
        let near = |d: Duration, micros: u128| d.as_micros().abs_diff(micros) <= 1;
        let start = tx.start_timestamp;
        assert!(near(
            start.duration_since(UNIX_EPOCH).unwrap(),
            1_796_068_623_279_299
        ));
        assert!(near(
            tx.timestamp.unwrap().duration_since(start).unwrap(),
            140
        ));
        let Some(sentry::protocol::Context::Trace(trace)) = tx.contexts.get("trace") else {
            panic!("no trace context");
        };
        assert_eq!(trace.trace_id, TraceId::from([0x71; 16]));
        assert_eq!(trace.span_id, SpanId::from([0x14; 8]));
        assert_eq!(trace.parent_span_id, Some(SpanId::from([0x3a; 8])));
        assert_eq!(trace.op.as_deref(), Some("http.server"));
        assert_eq!(trace.status, Some(SpanStatus::Ok));
        let request = tx.request.as_ref().unwrap();
        assert_eq!(
            request.url.as_ref().unwrap().as_str(),
            "http://localhost:1/work/cpu?ms=0"
        );
        assert_eq!(request.method.as_deref(), Some("GET"));
        assert_eq!(request.query_string.as_deref(), Some("ms=0"));
        let [span] = &tx.spans[..] else {
            panic!("one span: {:?}", tx.spans);
        };
        assert_eq!(span.op.as_deref(), Some("work"));
        assert_eq!(span.description.as_deref(), Some("cpu"));
        assert_eq!(span.parent_span_id, Some(SpanId::from([0x14; 8])));
        assert_eq!(span.span_id, SpanId::from([0xd6; 8]));
        assert_eq!(span.trace_id, TraceId::from([0x71; 16]));
        assert_eq!(span.status, Some(SpanStatus::DeadlineExceeded));
        assert!(near(
            span.timestamp
                .unwrap()
                .duration_since(span.start_timestamp)
                .unwrap(),
            60
        ));
    }

    #[test]
    fn the_header_carries_the_sampling_context_and_the_item_length() {
        let bytes = envelope(&finished(2, None));
        let text = String::from_utf8(bytes).unwrap();
        let mut lines = text.lines();
        let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(header["event_id"], "ce4c3f1735c5454984dee146d3ef4361");
        assert_eq!(header["trace"]["trace_id"], "71".repeat(16));
        assert_eq!(header["trace"]["public_key"], "public");
        assert_eq!(header["trace"]["sample_rate"], "0.1");
        assert_eq!(header["trace"]["sampled"], "true");
        let item: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        let payload = lines.next().unwrap();
        assert_eq!(item["length"], payload.len());
        let payload: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(payload["transaction_info"]["source"], "route");
        assert_eq!(payload["extra"]["dropped_spans"], 2);
        assert!(payload["request"].get("query_string").is_none());
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn the_bare_cases_and_hostile_strings_are_still_valid_envelopes() {
        let odd = "a\"b\\c\u{1}d\u{7f}é\n";
        let mut bare = finished(0, None);
        bare.sample_rate = None;
        bare.constant = Arc::new(Constant {
            fields: r#""platform":"native""#.into(),
            tags: String::new(),
            public_key: odd.into(),
        });
        bare.ending.route_name = None;
        bare.ending.status = SpanStatus::InternalError;
        bare.ending.request = None;
        bare.spans[0].status = None;
        bare.spans[0].description = odd.into();
        for tags in [Vec::new(), vec![("request_id", odd.to_owned())]] {
            bare.ending.tags = tags.clone();
            let bytes = envelope(&bare);
            let text = String::from_utf8(bytes.clone()).unwrap();
            let parsed =
                sentry::Envelope::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {text}"));
            let Some(EnvelopeItem::Transaction(tx)) = parsed.items().next() else {
                panic!("not a transaction: {text}");
            };
            assert_eq!(
                tx.name.as_deref(),
                Some("http.server"),
                "named by its operation"
            );
            assert_eq!(tx.tags.len(), tags.len(), "{text}");
            assert_eq!(tx.spans[0].description.as_deref(), Some(odd));
            assert_eq!(tx.spans[0].status, None);
            assert!(tx.request.is_none());
            let mut lines = text.lines();
            let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
            assert_eq!(header["trace"]["public_key"], odd);
            assert!(
                header["trace"].get("sample_rate").is_none(),
                "the caller's rate is unknown"
            );
            let _item_header = lines.next().unwrap();
            let payload: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
            assert!(
                payload.get("transaction_info").is_none(),
                "not a route: {text}"
            );
            assert_eq!(lines.next(), None, "one line per part: {text}");
        }
    }
}
