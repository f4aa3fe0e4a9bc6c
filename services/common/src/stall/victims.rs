//! The victims of a stall: requests on the same event loop that were in flight while another
//! request's poll held it. Kept per worker thread (only that thread touches it): the recent
//! long polls, and at each request's end one comparison with the last one's end.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::time::Duration;

use opentelemetry::KeyValue;

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

/// `request`, in flight since `since_ns`, just finished: count each other request's long poll
/// it overlapped, by culprit route, with the overlap as its delay.
#[inline]
pub(crate) fn request_done(since_ns: u64, request: usize, instruments: &Instruments) {
    if LAST_END.get() <= since_ns {
        return;
    }
    RECENT.with_borrow(|recent| {
        let mut by_culprit: Vec<(&str, u64)> = Vec::new();
        for p in recent
            .iter()
            .filter(|p| p.ended_ns > since_ns && p.request != request)
        {
            let overlap = p.ended_ns - p.started_ns.max(since_ns);
            match by_culprit.iter_mut().find(|(r, _)| *r == p.route) {
                Some((_, total)) => *total += overlap,
                None => by_culprit.push((&p.route, overlap)),
            }
        }
        for (route, delay) in by_culprit {
            let labels = [KeyValue::new(LABEL_CULPRIT, route.to_owned())];
            instruments.delayed_requests.add(1, &labels);
            instruments
                .delayed_seconds
                .add(Duration::from_nanos(delay).as_secs_f64(), &labels);
        }
    });
}
