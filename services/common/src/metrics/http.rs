//! The HTTP request counter and duration histogram, as a small middleware of ours on the
//! `prometheus` crate. It replaced actix-web-prom, whose `method` label took whatever a client
//! sent: 2,000 random methods made 38,000 series, and 200 methods of 60 KB made one scrape
//! 228 MB. Here every label value comes from a bounded set:
//! - `endpoint`: the route pattern, `UNMATCHED` for any path no route matches;
//! - `method`: one of [`METHODS`], anything else `other`;
//! - `status`: on the counter, the code when HTTP names it (about 60), else its class (`5xx`),
//!   so a proxied or injected odd code cannot add a series per value; on the histogram, always
//!   the class (`2xx`): with 73 buckets a series, one histogram per named code would make
//!   `/fault/status/{code}` alone ~4,600 series.
//!
//! Label handles are cached per middleware instance, which actix builds once per worker thread:
//! a request costs one hash lookup (foldhash: SipHash's resistance to chosen keys buys nothing
//! where every key comes from a bounded set), no lock and no allocation once its series exists.
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::{Method, StatusCode};
use futures_util::future::LocalBoxFuture;

use super::Registry;
use super::family::{Buckets, Counter, CounterVec, Histogram, HistogramVec};
use super::names::{HTTP_REQUESTS, HTTP_REQUESTS_DURATION, LATENCY_BUCKETS};
use crate::route_pattern::{RoutePatterns, UNMATCHED};

/// Methods that keep their own label value; the rest are `other`.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// Paths never counted: scrapes and kubelet probes would drown real traffic.
const EXCLUDED: &[&str] = &["/metrics", "/healthz", "/readyz"];

/// The bounded label value of a method.
pub fn method_label(method: &Method) -> &'static str {
    METHODS
        .iter()
        .copied()
        .find(|m| *m == method.as_str())
        .unwrap_or("other")
}

/// The bounded label value of a status: HTTP's named codes as themselves, others by class.
pub fn status_label(status: StatusCode) -> String {
    if status.canonical_reason().is_some() {
        status.as_str().to_owned()
    } else {
        format!("{}xx", status.as_u16() / 100)
    }
}

/// The status class (`1xx` to `5xx`), the histogram's `status` label.
pub fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// The two families, registered once per process. Our own families (metrics/family.rs),
/// written to text straight from their atomics: with 73 lines a series, the duration
/// histogram is most of a scrape.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: CounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        const LABELS: &[&str] = &["endpoint", "method", "status"];
        let requests = CounterVec::new(
            HTTP_REQUESTS,
            "Total number of HTTP requests",
            LABELS,
            registry.labels(),
            (),
        );
        let duration = HistogramVec::new(
            HTTP_REQUESTS_DURATION,
            "HTTP request duration in seconds for all requests",
            LABELS,
            registry.labels(),
            Buckets::new(LATENCY_BUCKETS),
        );
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }

    /// Counts an answer given below our middleware (actix-http's own 400, 408 and 431, see
    /// http_layer_answers.rs): no route matched, so `UNMATCHED`. Rare: no handle cache.
    pub fn observe_unrouted(&self, method: &'static str, status: StatusCode, seconds: f64) {
        let code = status_label(status);
        self.requests
            .with_label_values(&[UNMATCHED, method, code.as_str()])
            .inc();
        self.duration
            .with_label_values(&[UNMATCHED, method, status_class(status)])
            .observe(seconds);
    }
}

type Key = (Arc<str>, &'static str, StatusCode);

/// The label handles one worker thread has used, so later requests skip the vec's lock.
#[derive(Default)]
struct HandleCache(HashMap<Key, (Arc<Counter>, Arc<Histogram>), foldhash::fast::RandomState>);

impl HandleCache {
    fn observe(&mut self, metrics: &HttpMetrics, key: Key, seconds: f64) {
        let (counter, histogram) = self.0.entry(key).or_insert_with_key(|(e, m, s)| {
            let status = status_label(*s);
            (
                metrics
                    .requests
                    .with_label_values(&[&**e, m, status.as_str()]),
                metrics
                    .duration
                    .with_label_values(&[&**e, m, status_class(*s)]),
            )
        });
        counter.inc();
        histogram.observe(seconds);
    }
}

impl<S, B> Transform<S, ServiceRequest> for HttpMetrics
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = HttpMetricsMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(HttpMetricsMiddleware {
            service: Rc::new(service),
            metrics: self.clone(),
            cache: Rc::default(),
            routes: RoutePatterns::default(),
        }))
    }
}

pub struct HttpMetricsMiddleware<S> {
    service: Rc<S>,
    metrics: HttpMetrics,
    cache: Rc<RefCell<HandleCache>>,
    routes: RoutePatterns,
}

impl<S, B> Service<ServiceRequest> for HttpMetricsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<ServiceResponse<B>, actix_web::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if EXCLUDED.contains(&req.path()) {
            return Box::pin(self.service.call(req));
        }
        let started = Instant::now();
        let method = method_label(req.method());
        let endpoint = self.routes.of(&req);
        let metrics = self.metrics.clone();
        let cache = self.cache.clone();
        let fut = self.service.call(req);
        Box::pin(async move {
            let result = fut.await;
            let status = match &result {
                Ok(res) => res.status(),
                Err(e) => e.as_response_error().status_code(),
            };
            let seconds = started.elapsed().as_secs_f64();
            cache
                .borrow_mut()
                .observe(&metrics, (endpoint, method, status), seconds);
            result
        })
    }
}

#[cfg(test)]
impl HttpMetrics {
    pub(super) fn families_for_cost(&self) -> [Box<dyn super::family::Render>; 2] {
        [
            Box::new(self.requests.clone()),
            Box::new(self.duration.clone()),
        ]
    }

    /// One request's record, as the middleware makes it.
    pub(super) fn observe_for_test(
        &self,
        endpoint: &str,
        method: &Method,
        status: StatusCode,
        seconds: f64,
    ) {
        let key = (Arc::from(endpoint), method_label(method), status);
        HandleCache::default().observe(self, key, seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"FOO").expect("a token")),
            "other"
        );
        assert_eq!(method_label(&Method::TRACE), "other");
        assert_eq!(status_label(StatusCode::NOT_FOUND), "404");
        assert_eq!(
            status_label(StatusCode::from_u16(599).expect("in range")),
            "5xx"
        );
        let distinct: std::collections::HashSet<_> = (100..=999)
            .filter_map(|c| StatusCode::from_u16(c).ok())
            .map(status_label)
            .collect();
        assert!(distinct.len() < 80, "{} status values", distinct.len());
    }
}
