//! How envelopes reach Sentry: a thread of ours that drains a bounded queue in batches and
//! sends over a blocking ureq agent, with sentry's rate limiter, backing off when Sentry
//! cannot be reached.
//!
//! Why not sentry's reqwest transport: it runs a tokio runtime on its thread and hyper's
//! client under it, ~60 k instructions per envelope over a kept-alive connection, and each
//! sampled transaction is one envelope (callgrind, `make test-cost`'s route at traces 1.0).
//! A blocking agent on the transport's own thread does the same POST for a fraction of it,
//! and nothing it does can reach an event loop. TLS (Sentry over https) is rustls with the
//! aws-lc-rs provider the rest of the tree already builds, and Mozilla's roots.
//!
//! Why the backoff: sentry's transports try every envelope anew: with Sentry down (DNS gone,
//! a refused port, a firewall) each sampled transaction and each event paid a connection
//! attempt and its error path. An SRE expects a client to stop hammering a dependency that
//! is down: after a failed send, envelopes are dropped unsent (and recorded as lost, like a
//! rate limit) for a backoff that doubles from 1 s to 60 s and resets on the next success.
//! Sentry's own rate limits (429, `Retry-After`, `X-Sentry-Rate-Limits`) are honoured as
//! sentry's transports honour them. Content-Type is set: Spotlight drops envelopes without it.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sentry::client_report::{Reason as LostReason, Recorder as ClientReportRecorder};
use sentry::protocol::{EnvelopeFilterCallbacks, EnvelopeItem};
use sentry::transports::{RateLimiter, RateLimitingCategory};
use sentry::{Envelope, Transport, TransportFactory, TransportOptions};

use super::pipeline::{Endpoint, Pipeline, Reply, RoundError};
use super::transaction::Finished;

/// The first backoff after a failed send, and the longest.
const FIRST_BACKOFF_SECS: u64 = 1;
const MAX_BACKOFF_SECS: u64 = 60;
/// How often the sending thread looks for queued envelopes while they come. It looks rather
/// than waits on the queue, so handing over an envelope does not wake it: a wake is a futex
/// call on the event loop that finished the transaction, and a context switch on its core.
/// After [`QUIET_POLLS`] looks in a row found nothing (100 ms without an envelope) it sleeps
/// on the queue, and the next envelope wakes it: one wake per quiet spell (a trickle of ten
/// envelopes a second never wakes it), and no wake-ups of an idle service, which it used to
/// look for every 10 ms. Woken by an envelope, it waits this long for others to come with it.
/// An event reaches Sentry at most this much later.
const POLL: Duration = Duration::from_millis(10);
const QUIET_POLLS: u32 = 10;
/// Envelopes queued beyond this are dropped (and recorded as lost): a few polls' worth at
/// thousands of sampled requests a second, a few hundred KiB at most.
const DEFAULT_CAPACITY: usize = 1024;

enum Task {
    Send(Box<Envelope>),
    /// One of our transactions ([`super::transaction`]), written out by the sender.
    Transaction(Box<Finished>),
    Flush(SyncSender<()>),
    /// Nothing to send: wakes a sleeping sender to see the stop.
    Wake,
}

/// What the sender sends: an SDK envelope (events) or one of our transactions.
enum Queued {
    Envelope(Box<Envelope>),
    Transaction(Box<Finished>),
}

impl Queued {
    fn record_lost(&self, recorder: &ClientReportRecorder, reason: LostReason) {
        match self {
            Self::Envelope(envelope) => recorder.record_lost_data(&**envelope, reason),
            Self::Transaction(t) => lost_transaction(recorder, t, reason),
        }
    }
}

/// Losses of our transactions are waiting to be reported. The client attaches its pending
/// client report to the next envelope it sends, and our transactions skip the client: the
/// sender asks it for an envelope of its own when nothing else went ([`REPORT_EVERY`]).
static TRANSACTIONS_LOST: AtomicBool = AtomicBool::new(false);

/// How often, at most, the sender sends an envelope only to carry a client report.
const REPORT_EVERY: Duration = Duration::from_secs(1);

fn lost_transaction(recorder: &ClientReportRecorder, t: &Finished, reason: LostReason) {
    recorder.record_lost_data(&t.as_lost(), reason);
    TRANSACTIONS_LOST.store(true, Ordering::Relaxed);
}

/// The transport's queue, for our transactions: they skip the SDK's client.
#[derive(Clone)]
pub(crate) struct TransactionQueue {
    queue: SyncSender<Task>,
    recorder: ClientReportRecorder,
}

impl TransactionQueue {
    /// Never blocks: a full queue drops the transaction (recorded as lost).
    pub(crate) fn send(&self, transaction: Box<Finished>) {
        if let Err(e) = self.queue.try_send(Task::Transaction(transaction)) {
            let (task, reason) = match e {
                TrySendError::Full(t) => (t, LostReason::QueueOverflow),
                TrySendError::Disconnected(t) => (t, LostReason::InternalError),
            };
            if let Task::Transaction(t) = task {
                lost_transaction(&self.recorder, &t, reason);
            }
        }
    }
}

pub(crate) struct BackingOffTransport {
    queue: SyncSender<Task>,
    recorder: ClientReportRecorder,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Transport for BackingOffTransport {
    fn send_envelope(&self, envelope: Envelope) {
        // Never blocks: a full queue drops the envelope, as sentry's transports do.
        if let Err(e) = self.queue.try_send(Task::Send(Box::new(envelope))) {
            let (task, reason) = match e {
                TrySendError::Full(t) => (t, LostReason::QueueOverflow),
                TrySendError::Disconnected(t) => (t, LostReason::InternalError),
            };
            if let Task::Send(envelope) = task {
                self.recorder.record_lost_data(&*envelope, reason);
            }
        }
    }

    /// Waits for everything queued before it to be sent. Called at exit only, from the
    /// closing thread ([`super::init::Reporting::close`] bounds it), never on an event loop:
    /// it may wait for room in a full queue.
    fn flush(&self, timeout: Duration) -> bool {
        let (done, flushed) = sync_channel(1);
        self.queue.send(Task::Flush(done)).is_ok() && flushed.recv_timeout(timeout).is_ok()
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        self.stop();
        flushed
    }
}

impl BackingOffTransport {
    /// The sender exits once nothing is queued; woken if it sleeps on the queue (a full queue
    /// means it is busy, and it sees the flag after that batch).
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.queue.try_send(Task::Wake);
    }
}

impl Drop for BackingOffTransport {
    fn drop(&mut self) {
        self.stop();
        let thread = self.thread.get_mut().ok().and_then(Option::take);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Makes our transport for the client. A struct, not a closure: the SDK calls a closure
/// through its deprecated `create_transport(&ClientOptions)`, which rebuilds the transport
/// options with a recorder of its own, so every loss the transport recorded went nowhere.
pub(crate) struct Factory {
    pub(crate) agent: ureq::Agent,
    pub(crate) timeout: Duration,
    /// Where the transport's queue goes, for our transactions.
    pub(crate) transactions: Arc<std::sync::OnceLock<TransactionQueue>>,
}

impl TransportFactory for Factory {
    fn create_transport_with_options(&self, options: TransportOptions) -> Arc<dyn Transport> {
        let transport = BackingOffTransport::new(options, self.agent.clone(), self.timeout);
        let _ = self.transactions.set(transport.transaction_queue());
        Arc::new(transport)
    }
}

/// The next backoff after a failure, given the current one (0 = healthy).
fn next_backoff(current_secs: u64) -> u64 {
    if current_secs == 0 {
        FIRST_BACKOFF_SECS
    } else {
        (current_secs * 2).min(MAX_BACKOFF_SECS)
    }
}

/// The agent envelopes are sent with: every call ends within `timeout` (a Sentry that
/// accepts and never answers must not hold the queue, nor the exit flush), no redirects
/// (envelopes go to the DSN's host and nowhere else), statuses read rather than raised.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into()
}

impl BackingOffTransport {
    /// The queue our transactions take to this transport's sender.
    pub(crate) fn transaction_queue(&self) -> TransactionQueue {
        TransactionQueue {
            queue: self.queue.clone(),
            recorder: self.recorder.clone(),
        }
    }

    /// `options` as the client hands them to its factory ([`Factory`]): with the recorder
    /// of its client reports.
    pub(crate) fn new(options: TransportOptions, agent: ureq::Agent, timeout: Duration) -> Self {
        let TransportOptions {
            dsn,
            user_agent,
            http_proxy,
            https_proxy,
            client_report_recorder,
            transport_channel_capacity,
            ..
        } = options;
        let capacity = transport_channel_capacity.map_or(DEFAULT_CAPACITY, |c| c.get());
        let (queue, tasks) = sync_channel(capacity);
        let stop = Arc::new(AtomicBool::new(false));
        let auth = dsn.to_auth(Some(&user_agent)).to_string();
        // Behind a proxy, ureq (which speaks to proxies) sends one envelope at a time.
        let proxied = http_proxy.is_some() || https_proxy.is_some();
        let way = if proxied {
            Way::OneByOne
        } else {
            Way::Pipelined(Pipeline::new(Endpoint::new(&dsn, &auth, timeout)))
        };
        let sender = EnvelopeSender {
            way,
            agent,
            // Prepared once: per envelope, parsing the URL and the auth header cost ~30 k
            // instructions (callgrind).
            url: dsn.envelope_api_url().to_string(),
            auth,
            host: dsn.host().to_owned(),
            recorder: client_report_recorder.clone(),
            backoff_secs: 0,
            limits: RateLimiter::new(),
            bodies: Vec::new(),
            item: Vec::new(),
            last_report: std::time::Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("loopscope-sentry-send".into())
            .spawn({
                let stop = stop.clone();
                move || sender.run(&tasks, &stop)
            })
            .ok();
        Self {
            queue,
            recorder: client_report_recorder,
            stop,
            thread: Mutex::new(thread),
        }
    }
}

/// The most envelopes sent in one pipelined write.
const MAX_BATCH: usize = 64;

/// How the sender talks to Sentry.
enum Way {
    /// Everything queued in one write on a kept-alive connection ([`Pipeline`]).
    Pipelined(Pipeline),
    /// One envelope per request through ureq: behind a proxy, or when the server does not
    /// keep connections alive or answered something the pipeline does not read.
    OneByOne,
}

/// The sending thread's state.
struct EnvelopeSender {
    way: Way,
    agent: ureq::Agent,
    url: String,
    auth: String,
    host: String,
    recorder: ClientReportRecorder,
    /// Seconds of the backoff in force; 0 while sends succeed.
    backoff_secs: u64,
    limits: RateLimiter,
    /// The serialized envelopes of a round, end to end: one buffer kept from round to round
    /// instead of a 2 KiB allocation per envelope (whose large-size requests made glibc
    /// consolidate the bins the event loop's frees fill, in the profile of a busy worker).
    bodies: Vec<u8>,
    /// One transaction's item, written before its header (which states its length).
    item: Vec<u8>,
    /// When the sender last asked the client for a client report.
    last_report: std::time::Instant,
}

/// A round's buffer larger than this is not kept for the next (a burst of large events).
const KEPT_BODIES_BYTES: usize = 1 << 20;
/// Nor a transaction's item buffer larger than this (one with hundreds of spans).
const KEPT_ITEM_BYTES: usize = 64 << 10;

impl EnvelopeSender {
    fn run(mut self, tasks: &Receiver<Task>, stop: &AtomicBool) {
        // The task that woke the sender from its sleep on the queue: the first of the batch.
        let mut woken_by = None;
        let mut quiet_polls = 0;
        loop {
            let mut batch = Vec::new();
            let mut flushes = Vec::new();
            let mut gone = false;
            while batch.len() < MAX_BATCH {
                match woken_by.take().map_or_else(|| tasks.try_recv(), Ok) {
                    Ok(Task::Send(envelope)) => batch.push(Queued::Envelope(envelope)),
                    Ok(Task::Transaction(t)) => batch.push(Queued::Transaction(t)),
                    Ok(Task::Flush(done)) => flushes.push(done),
                    Ok(Task::Wake) => {}
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        gone = true;
                        break;
                    }
                }
            }
            let idle = batch.is_empty() && flushes.is_empty();
            if !batch.is_empty() {
                self.send(batch);
            }
            for done in flushes {
                let _ = done.try_send(());
            }
            if gone || (idle && stop.load(Ordering::Relaxed)) {
                return;
            }
            quiet_polls = if idle { quiet_polls + 1 } else { 0 };
            if idle && quiet_polls < QUIET_POLLS {
                self.report_losses();
                // The transport's own thread, never an event loop (see POLL).
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(POLL);
            } else if idle {
                self.report_losses();
                woken_by = match tasks.recv_timeout(REPORT_EVERY) {
                    Ok(task) => Some(task),
                    // Time to look at the losses again.
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                };
                if matches!(woken_by, Some(Task::Send(_) | Task::Transaction(_))) {
                    // The transport's own thread, never an event loop (see POLL).
                    #[allow(clippy::disallowed_methods)]
                    std::thread::sleep(POLL);
                }
            }
        }
    }

    /// Has the client send its pending client report when transactions were lost, Sentry is
    /// not held back, and none was sent in the last [`REPORT_EVERY`].
    fn report_losses(&mut self) {
        if self.last_report.elapsed() < REPORT_EVERY
            || self.limits.is_disabled(RateLimitingCategory::Any).is_some()
            || !TRANSACTIONS_LOST.swap(false, Ordering::Relaxed)
        {
            return;
        }
        self.last_report = std::time::Instant::now();
        if let Some(client) = sentry::Hub::main().client() {
            // Queued to this transport; sent only if the client put a report in it.
            client.send_envelope(Envelope::new());
        }
    }

    /// What of `queued` a rate limit lets through (the rest recorded as lost).
    fn within_limits(&self, queued: Queued) -> Option<Queued> {
        let (limits, recorder) = (&self.limits, &self.recorder);
        match queued {
            Queued::Envelope(envelope) => (*envelope)
                .filter(EnvelopeFilterCallbacks::new(
                    |item: &EnvelopeItem| {
                        limits.is_enabled(match item {
                            EnvelopeItem::Event(_) => RateLimitingCategory::Error,
                            EnvelopeItem::Transaction(_) => RateLimitingCategory::Transaction,
                            EnvelopeItem::Attachment(_) => RateLimitingCategory::Attachment,
                            _ => RateLimitingCategory::Any,
                        })
                    },
                    |item: EnvelopeItem| {
                        recorder.record_lost_data(&item, LostReason::RatelimitBackoff);
                    },
                ))
                .map(|e| Queued::Envelope(Box::new(e))),
            Queued::Transaction(t) => {
                if limits.is_enabled(RateLimitingCategory::Transaction) {
                    Some(Queued::Transaction(t))
                } else {
                    lost_transaction(recorder, &t, LostReason::RatelimitBackoff);
                    None
                }
            }
        }
    }

    fn send(&mut self, batch: Vec<Queued>) {
        let mut bodies = std::mem::take(&mut self.bodies);
        bodies.clear();
        self.send_round(batch, &mut bodies);
        if bodies.capacity() <= KEPT_BODIES_BYTES {
            self.bodies = bodies;
        }
        if self.item.capacity() > KEPT_ITEM_BYTES {
            self.item = Vec::new();
        }
    }

    fn send_round(&mut self, batch: Vec<Queued>, buf: &mut Vec<u8>) {
        let mut ready = Vec::with_capacity(batch.len());
        for queued in batch {
            if self.limits.is_disabled(RateLimitingCategory::Any).is_some() {
                queued.record_lost(&self.recorder, LostReason::RatelimitBackoff);
                continue;
            }
            if let Queued::Envelope(e) = &queued
                && e.items().next().is_none()
            {
                continue; // asked for a client report that another envelope took already
            }
            let Some(queued) = self.within_limits(queued) else {
                continue;
            };
            let start = buf.len();
            let written = match &queued {
                Queued::Envelope(envelope) => envelope.to_writer(&mut *buf).is_ok(),
                Queued::Transaction(t) => {
                    super::transaction_json::write_envelope(t, &mut self.item, buf);
                    true
                }
            };
            if !written {
                buf.truncate(start);
                queued.record_lost(&self.recorder, LostReason::InternalError);
                continue;
            }
            ready.push((queued, start..buf.len()));
        }
        if ready.is_empty() {
            return;
        }
        // Out of `self` for the round, so replies can update the limits; put back unless
        // the transport falls back.
        let Way::Pipelined(mut pipeline) = std::mem::replace(&mut self.way, Way::OneByOne) else {
            self.send_one_by_one(ready.into_iter().map(|(e, body)| (e, buf[body].to_vec())));
            return;
        };
        let bodies: Vec<&[u8]> = ready.iter().map(|(_, body)| &buf[body.clone()]).collect();
        let sent = bodies.len();
        // Replies read so far; rounds that ended with the server closing after a reply
        // (nginx does after `keepalive_requests`, actix now and then) and answered at most
        // one, in a row.
        let mut answered = 0;
        let mut short_rounds = 0;
        let (fall_back_because, error) = loop {
            let (replies, error) = pipeline.round(&bodies[answered..]);
            let got = replies.len();
            for ((envelope, _), reply) in ready[answered..].iter().zip(replies) {
                self.answered(envelope, &reply);
            }
            answered += got;
            match error {
                None if answered == sent => {
                    self.way = Way::Pipelined(pipeline);
                    return;
                }
                // Closed after a reply: the rest go again on a new connection, unless the
                // server keeps no connection alive at all (one reply per connection, twice,
                // from a server that never answered a whole round on one connection). One
                // that did keeps the pipeline: an overloaded server (a busy actix closes
                // after a reply now and then) is not a server without keep-alive, and ureq
                // would send every later envelope on a connection of its own.
                None => {
                    short_rounds = if got <= 1 { short_rounds + 1 } else { 0 };
                    if short_rounds >= 2 && (!pipeline.proven || got == 0) {
                        break ("sentry closes the connection after every reply", None);
                    }
                }
                Some(RoundError::Protocol(what)) => break (what, Some(RoundError::Protocol(what))),
                // A first round that fails past the TCP connection (TLS, something in the
                // way that is not HTTP/1.1): ureq, which is known to work, takes over.
                Some(e @ RoundError::Io(_)) if !pipeline.proven => {
                    break ("the first pipelined round failed", Some(e));
                }
                Some(error) => {
                    for (queued, _) in &ready[answered..] {
                        queued.record_lost(&self.recorder, LostReason::NetworkError);
                    }
                    self.unreachable(&error);
                    self.way = Way::Pipelined(pipeline);
                    return;
                }
            }
        };
        drop(bodies);
        self.fall_back(fall_back_because, error.as_ref());
        self.send_one_by_one(
            ready
                .into_iter()
                .skip(answered)
                .map(|(e, body)| (e, buf[body].to_vec())),
        );
    }

    /// Through ureq, in order, until one cannot reach Sentry: the rest are held back with
    /// the backoff that failure starts, not tried one by one.
    fn send_one_by_one(&mut self, envelopes: impl IntoIterator<Item = (Queued, Vec<u8>)>) {
        for (queued, body) in envelopes {
            if self.limits.is_disabled(RateLimitingCategory::Any).is_some() {
                queued.record_lost(&self.recorder, LostReason::RatelimitBackoff);
            } else {
                self.send_one(&queued, body);
            }
        }
    }

    /// Leaves the pipeline for ureq, one envelope at a time, for good.
    fn fall_back(&mut self, why: &str, error: Option<&RoundError>) {
        tracing::info!(
            sentry_host = %self.host,
            reason = why,
            error = error.map(tracing::field::display),
            "sentry: envelopes go one request at a time from now on"
        );
        self.way = Way::OneByOne;
    }

    fn send_one(&mut self, envelope: &Queued, body: Vec<u8>) {
        let sent = self
            .agent
            .post(&self.url)
            .header("x-sentry-auth", &self.auth)
            .content_type("application/x-sentry-envelope")
            .send(&body[..]);
        match sent {
            Ok(mut response) => {
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let reply = Reply {
                    status: response.status().as_u16(),
                    rate_limits: header("x-sentry-rate-limits"),
                    retry_after: header("retry-after"),
                    closes: false,
                };
                // Read to the end (bounded), so the connection is kept for the next one.
                let _ = response
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024)
                    .read_to_vec();
                self.answered(envelope, &reply);
            }
            Err(error) => {
                envelope.record_lost(&self.recorder, LostReason::NetworkError);
                self.unreachable(&error);
            }
        }
    }

    /// Sentry answered: its rate limits apply, an error status loses the envelope.
    fn answered(&mut self, envelope: &Queued, reply: &Reply) {
        self.backoff_secs = 0;
        if let Some(limit) = &reply.rate_limits {
            self.limits.update_from_sentry_header(limit);
        } else if let Some(after) = &reply.retry_after {
            self.limits.update_from_retry_after(after);
        } else if reply.status == 429 {
            self.limits.update_from_429();
        }
        if (400..=599).contains(&reply.status) && reply.status != 429 {
            envelope.record_lost(&self.recorder, LostReason::SendError);
        }
    }

    /// Sentry could not be reached: back off (doubling), warning once per outage.
    fn unreachable(&mut self, error: &dyn std::fmt::Display) {
        let was = self.backoff_secs;
        self.backoff_secs = next_backoff(was);
        if was == 0 {
            tracing::warn!(
                sentry_host = %self.host,
                error = %error,
                backoff_s = self.backoff_secs,
                "sentry unreachable: events and transactions are dropped unsent \
                 while it stays so (backoff 1 s doubling to 60 s)"
            );
        }
        // Everything is held back for the backoff, as for a rate limit.
        self.limits
            .update_from_retry_after(&self.backoff_secs.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute() {
        let mut secs = 0;
        let seen: Vec<u64> = (0..8)
            .map(|_| {
                secs = next_backoff(secs);
                secs
            })
            .collect();
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 60, 60]);
    }
}
