//! What the hot path costs: a request through `PollTimed` (its context, the slot stores on
//! each poll, the end-of-request victim check) against the same future bare. Run it on a
//! release build, where the number means something:
//! `cargo test --release -p common poll_timer_cost -- --ignored --nocapture`.
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{PollTimed, RequestContext, StallDetector, StallMonitor, register_worker};
use crate::metrics::Telemetry;

/// A request: pending `polls - 1` times, then ready; like a handler awaiting a timer.
struct Polls(u32);

impl Future for Polls {
    type Output = u32;
    fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        self.0 -= 1;
        if self.0 == 0 {
            Poll::Ready(7)
        } else {
            Poll::Pending
        }
    }
}

fn drive<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
#[ignore = "a measurement: run it on a release build"]
fn poll_timer_cost() {
    let service = crate::ServiceInfo {
        name: "bench",
        handling: None,
        default_port: 0,
        default_admin_port: 0,
    };
    let telemetry = Telemetry::new(&service).expect("a registry");
    let instruments = telemetry.instruments.clone();
    register_worker(&instruments);
    let monitor = StallMonitor::start(
        &service,
        instruments.clone(),
        Duration::from_millis(10),
        Some(Duration::from_millis(100)),
        Duration::from_secs(60),
    )
    .expect("the stall threads start");
    let detector = Arc::new(StallDetector::new(
        Duration::from_millis(10),
        instruments,
        monitor,
    ));
    const N: u32 = 200_000;
    const POLLS: u32 = 3;
    let bare = || {
        let t = Instant::now();
        for _ in 0..N {
            black_box(drive(Polls(POLLS)));
        }
        t.elapsed()
    };
    let timed = || {
        let t = Instant::now();
        for _ in 0..N {
            let request = RequestContext::new(
                &actix_web::http::Method::GET,
                "/work/io".into(),
                crate::request_id::RequestId::new(),
                None,
            );
            black_box(drive(PollTimed::new(
                Polls(POLLS),
                request,
                detector.clone(),
            )));
        }
        t.elapsed()
    };
    // Warm up, then the best of five of each: the machine is shared.
    bare();
    timed();
    let best = |f: &dyn Fn() -> Duration| (0..5).map(|_| f()).min().unwrap_or_default();
    let (b, t) = (best(&bare), best(&timed));
    let per = |d: Duration| d.as_secs_f64() * 1e9 / f64::from(N);
    eprintln!(
        "per request of {POLLS} polls: bare {:.0} ns, with the stall layer {:.0} ns: +{:.0} ns",
        per(b),
        per(t),
        per(t) - per(b)
    );
}
