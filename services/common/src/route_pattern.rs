//! A request's route pattern (`/work/cpu`, or `UNMATCHED` when no route matches): the
//! `endpoint` label, the access log's `route` and the stall report's. actix finds it by
//! matching the path against every resource again (`match_pattern`, a `String` each time),
//! ~600 instructions a request per layer that asks. A layer keeps the patterns of the last
//! few paths it saw instead: a path maps to one pattern for the life of the app, so a hit is
//! a string comparison and a reference count.
use std::cell::RefCell;
use std::sync::{Arc, LazyLock};

use actix_web::dev::ServiceRequest;

use crate::recent::Recent;

/// The pattern of a path no route matches.
pub(crate) const UNMATCHED: &str = "UNMATCHED";

/// Paths remembered per layer and event loop: a service has a few routes, and a client
/// sending many distinct paths only makes each of them cost a match again.
const REMEMBERED: usize = 8;

/// Longer paths are matched every time rather than copied into the memo.
const LONGEST_REMEMBERED: usize = 128;

static UNMATCHED_PATTERN: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(UNMATCHED));

/// One layer's memo of path → pattern, on one event loop (a middleware instance).
pub(crate) struct RoutePatterns {
    recent: RefCell<Recent<Arc<str>>>,
}

impl Default for RoutePatterns {
    fn default() -> Self {
        Self {
            recent: RefCell::new(Recent::new(REMEMBERED, LONGEST_REMEMBERED)),
        }
    }
}

impl RoutePatterns {
    /// The pattern of the route `req`'s path matches.
    pub(crate) fn of(&self, req: &ServiceRequest) -> Arc<str> {
        self.recent
            .borrow_mut()
            .get_or_insert_with(req.path(), || match req.match_pattern() {
                Some(pattern) => Arc::from(pattern),
                None => Arc::clone(&UNMATCHED_PATTERN),
            })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use actix_web::{App, HttpResponse, web};

    use super::*;

    /// The patterns `paths` get through one memo, inside an app with a static and a dynamic
    /// route (the memo must answer what actix's own matching answers).
    async fn patterns(paths: &[&str]) -> Vec<String> {
        let memo = std::rc::Rc::new(RoutePatterns::default());
        let seen = std::rc::Rc::new(RefCell::new(Vec::new()));
        let (m, s) = (memo.clone(), seen.clone());
        let app = actix_web::test::init_service(
            App::new()
                .wrap_fn(move |req, srv| {
                    let pattern = m.of(&req);
                    assert_eq!(
                        &*pattern,
                        req.match_pattern().as_deref().unwrap_or(UNMATCHED),
                        "{}",
                        req.path()
                    );
                    s.borrow_mut().push(pattern.to_string());
                    actix_web::dev::Service::call(srv, req)
                })
                .route("/work/cpu", web::get().to(HttpResponse::Ok))
                .route("/fault/status/{code}", web::get().to(HttpResponse::Ok)),
        )
        .await;
        for path in paths {
            let _ = actix_web::test::call_service(&app, TestRequest::get().uri(path).to_request())
                .await;
        }
        seen.take()
    }

    #[actix_web::test]
    async fn a_remembered_path_gets_the_pattern_actix_matches() {
        let paths = [
            "/work/cpu",
            "/nope",
            "/fault/status/500",
            "/work/cpu",
            "/nope",
        ];
        assert_eq!(
            patterns(&paths).await,
            [
                "/work/cpu",
                UNMATCHED,
                "/fault/status/{code}",
                "/work/cpu",
                UNMATCHED
            ]
        );
    }

    #[actix_web::test]
    async fn more_paths_than_remembered_and_long_ones_still_match_right() {
        let long = format!("/work/{}", "x".repeat(LONGEST_REMEMBERED));
        let mut paths: Vec<String> = (0..3 * REMEMBERED)
            .map(|i| format!("/fault/status/{i}"))
            .collect();
        paths.extend([
            "/work/cpu".to_owned(),
            long.clone(),
            long,
            "/work/cpu".to_owned(),
        ]);
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let got = patterns(&refs).await;
        assert!(
            got[..3 * REMEMBERED]
                .iter()
                .all(|p| p == "/fault/status/{code}")
        );
        assert_eq!(
            got[3 * REMEMBERED..],
            ["/work/cpu", UNMATCHED, UNMATCHED, "/work/cpu"]
        );
    }
}
