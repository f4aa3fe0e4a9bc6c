//! The victims of a stall: requests on the same event loop that were in flight while another
//! request's poll held it, and requests whose bytes sat in their socket while it did (read
//! only after it). Kept per worker thread (only that thread touches it): the recent long
//! polls, and at each request's start and end one comparison with the last one's end.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::Duration;

use opentelemetry::KeyValue;

use super::context::RequestContext;
use crate::metrics::Instruments;
use crate::metrics::names::LABEL_CULPRIT;

/// Long polls remembered per worker; older ones have no victims left in practice.
const REMEMBERED: usize = 16;

struct LongPoll {
    started_ns: u64,
    ended_ns: u64,
    route: String,
    /// The culprit request, to not count a request as its own victim.
    request: usize,
}

thread_local! {
    static RECENT: RefCell<VecDeque<LongPoll>> = const { RefCell::new(VecDeque::new()) };
    static LAST_END: Cell<u64> = const { Cell::new(0) };
}

/// A poll of `request` held this event loop from `started_ns` to `ended_ns`.
pub(crate) fn long_poll(started_ns: u64, ended_ns: u64, route: &str, request: usize) {
    RECENT.with_borrow_mut(|recent| {
        if recent.len() >= REMEMBERED {
            recent.pop_front();
        }
        recent.push_back(LongPoll {
            started_ns,
            ended_ns,
            route: route.to_owned(),
            request,
        });
    });
    LAST_END.set(ended_ns);
}

/// How soon after a stall a request's first poll still asks the kernel whether it waited.
const QUEUED_WINDOW_NS: u64 = 1_000_000_000;

/// A request's first poll: if a long poll of this loop ended less than a second ago, ask the
/// kernel when the request's bytes arrived (one getsockopt, only then), and count each long
/// poll that held the loop after that as a culprit it waited behind.
#[inline]
pub(crate) fn first_poll(started_ns: u64, request: &RequestContext, instruments: &Instruments) {
    let last = LAST_END.get();
    if last == 0 || started_ns.saturating_sub(last) > QUEUED_WINDOW_NS {
        return;
    }
    let Some(waited) = request
        .socket
        .and_then(super::signal::tcp_last_data_received)
    else {
        return;
    };
    let arrived = started_ns.saturating_sub(waited.as_nanos() as u64);
    RECENT.with_borrow(|recent| {
        let waits = recent
            .iter()
            .filter(|p| p.ended_ns > arrived && p.ended_ns <= started_ns)
            .map(|p| (p.route.as_str(), p.ended_ns - p.started_ns.max(arrived)));
        count(waits, instruments);
    });
}

/// `request`, in flight since `since_ns`, just finished: count each other request's long poll
/// it overlapped, by culprit route, with the overlap as its delay.
#[inline]
pub(crate) fn request_done(since_ns: u64, request: usize, instruments: &Instruments) {
    if LAST_END.get() <= since_ns {
        return;
    }
    RECENT.with_borrow(|recent| {
        let waits = recent
            .iter()
            .filter(|p| p.ended_ns > since_ns && p.request != request)
            .map(|p| (p.route.as_str(), p.ended_ns - p.started_ns.max(since_ns)));
        count(waits, instruments);
    });
}

/// One delayed request per culprit route, with the time it waited behind it.
fn count<'a>(waits: impl Iterator<Item = (&'a str, u64)>, instruments: &Instruments) {
    let mut by_culprit: Vec<(&str, u64)> = Vec::new();
    for (route, overlap) in waits {
        match by_culprit.iter_mut().find(|(r, _)| *r == route) {
            Some((_, total)) => *total += overlap,
            None => by_culprit.push((route, overlap)),
        }
    }
    for (route, delay) in by_culprit {
        let labels = [KeyValue::new(LABEL_CULPRIT, route.to_owned())];
        instruments.delayed_requests.add(1, &labels);
        instruments
            .delayed_seconds
            .add(Duration::from_nanos(delay).as_secs_f64(), &labels);
    }
}
