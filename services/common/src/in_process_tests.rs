//! In-process tests of the runtime's request path (`actix_web::test`): the probes, the
//! GET/HEAD/OPTIONS/405 contract of every route, request ids and query-parameter errors, on
//! an app built from the same pieces `server.rs` uses. No process, no port: milliseconds, in
//! `make check`. The cross-service tests (tests/) cover the same behaviour on real binaries.
// Test code unwraps on purpose: a bad answer should fail the test loudly.
#![allow(clippy::unwrap_used)]

use actix_web::http::{Method, StatusCode, header};
use actix_web::test::{TestRequest, call_service, init_service, read_body, read_body_json};
use actix_web::{App, HttpResponse, web};
use contract::{ErrorBody, Probe, ProbeStatus};
use serde_json::{Value, json};

use crate::health::{self, Readiness};
use crate::params::Params;
use crate::request_tracking::RequestTracking;
use crate::{ApiError, get_route};

/// `/work/echo?ms=N` (1..=1000, default 10), the shape of every loopscope route.
async fn echo(mut params: Params) -> Result<HttpResponse, ApiError> {
    let ms: u64 = params.int("ms", Some(10), 1..=1000)?;
    params.finish()?;
    Ok(HttpResponse::Ok().json(json!({ "ms": ms })))
}

async fn boom() -> HttpResponse {
    panic!("a handler bug")
}

/// The app-wide middleware that gives each request its id (every optional layer off), the
/// probes, and two routes made with [`get`].
macro_rules! app {
    ($readiness:expr) => {
        init_service(
            App::new()
                .wrap(RequestTracking {
                    detector: None,
                    in_flight: None,
                    access_log: false,
                })
                .app_data(web::Data::new($readiness))
                .configure(health::routes)
                .service(get_route("/work/echo", echo))
                .service(get_route("/test/boom", boom)),
        )
        .await
    };
}

fn request_id(res: &actix_web::dev::ServiceResponse) -> String {
    res.headers()
        .get("x-request-id")
        .expect("x-request-id on every answer")
        .to_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn probes_answer_and_readiness_follows_the_latch() {
    let readiness = Readiness::default();
    let app = app!(readiness.clone());

    let res = call_service(&app, TestRequest::get().uri("/healthz").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        read_body_json::<Value, _>(res).await,
        json!({"status": "ok"})
    );

    let res = call_service(&app, TestRequest::get().uri("/readyz").to_request()).await;
    assert_eq!(
        res.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready before the latch"
    );
    assert_eq!(
        read_body_json::<Probe, _>(res).await,
        Probe::new(ProbeStatus::Draining)
    );

    readiness.set_ready(true);
    let res = call_service(&app, TestRequest::get().uri("/readyz").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        read_body_json::<Probe, _>(res).await,
        Probe::new(ProbeStatus::Ready)
    );

    // A load balancer may probe with HEAD: the same answer, no body.
    let head = TestRequest::default().method(Method::HEAD).uri("/healthz");
    let res = call_service(&app, head.to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);

    // Any other method: a JSON 405 that says what is allowed, as on every route.
    for probe in ["/healthz", "/readyz"] {
        let res = call_service(&app, TestRequest::post().uri(probe).to_request()).await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{probe}");
        assert_eq!(
            res.headers().get(header::ALLOW).unwrap(),
            "GET, HEAD, OPTIONS",
            "{probe}"
        );
        let body: ErrorBody = read_body_json(res).await;
        assert_eq!(body.error, "method_not_allowed", "{probe}: {body:?}");
    }
}

#[actix_web::test]
async fn every_route_answers_head_and_options_and_refuses_other_methods() {
    let app = app!(Readiness::default());

    let head = TestRequest::default()
        .method(Method::HEAD)
        .uri("/work/echo?ms=5");
    let res = call_service(&app, head.to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);

    let options = TestRequest::default()
        .method(Method::OPTIONS)
        .uri("/work/echo");
    let res = call_service(&app, options.to_request()).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        res.headers().get(header::ALLOW).unwrap(),
        "GET, HEAD, OPTIONS"
    );
    assert!(read_body(res).await.is_empty());

    let post = TestRequest::post().uri("/work/echo").to_request();
    let res = call_service(&app, post).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.headers().get(header::ALLOW).unwrap(),
        "GET, HEAD, OPTIONS"
    );
    let id = request_id(&res);
    let body: ErrorBody = read_body_json(res).await;
    assert_eq!(body.error, "method_not_allowed", "{body:?}");
    assert_eq!(
        body.message, "POST is not allowed on /work/echo; use GET",
        "{body:?}"
    );
    assert_eq!(
        body.request_id.as_deref(),
        Some(id.as_str()),
        "the body names the header's id"
    );
}

#[actix_web::test]
async fn a_405_clips_what_it_echoes() {
    let app = app!(Readiness::default());
    let method = Method::from_bytes("X".repeat(500).as_bytes()).unwrap();
    let req = TestRequest::default().method(method).uri("/work/echo");
    let res = call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: ErrorBody = read_body_json(res).await;
    let message = body.message;
    assert!(
        message.len() < 200,
        "an attacker's method is not echoed whole: {message}"
    );
}

#[actix_web::test]
async fn request_ids_are_made_or_kept_when_safe() {
    let app = app!(Readiness::default());

    let res = call_service(&app, TestRequest::get().uri("/work/echo").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let made = request_id(&res);
    assert_eq!(made.len(), 32, "{made}");
    assert!(made.bytes().all(|b| b.is_ascii_hexdigit()), "{made}");
    let res = call_service(&app, TestRequest::get().uri("/work/echo").to_request()).await;
    assert_ne!(request_id(&res), made, "one id per request");

    let kept = TestRequest::get()
        .uri("/work/echo")
        .insert_header(("x-request-id", "lb-7f3a"))
        .to_request();
    assert_eq!(request_id(&call_service(&app, kept).await), "lb-7f3a");

    for unsafe_id in ["x".repeat(65), "has space".to_owned()] {
        let req = TestRequest::get()
            .uri("/work/echo")
            .insert_header(("x-request-id", unsafe_id.as_str()))
            .to_request();
        let id = request_id(&call_service(&app, req).await);
        assert_ne!(id, unsafe_id, "replaced, not kept");
        assert_eq!(id.len(), 32);
    }
}

#[actix_web::test]
async fn bad_parameters_are_400s_that_name_the_parameter() {
    let app = app!(Readiness::default());
    let cases = [
        ("/work/echo?ms=abc", "ms", "between 1 and 1000, got `abc`"),
        ("/work/echo?ms=0", "ms", "between 1 and 1000"),
        ("/work/echo?ms=1&ms=2", "query", "more than once"),
        ("/work/echo?mss=100", "query", "unknown parameter(s): mss"),
    ];
    for (uri, param, says) in cases {
        let res = call_service(&app, TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{uri}");
        let id = request_id(&res);
        let body: ErrorBody = read_body_json(res).await;
        assert_eq!(body.error, "bad_request", "{uri}: {body:?}");
        assert_eq!(body.param.as_deref(), Some(param), "{uri}: {body:?}");
        assert!(body.message.contains(says), "{uri}: {body:?}");
        assert_eq!(
            body.request_id.as_deref(),
            Some(id.as_str()),
            "{uri}: {body:?}"
        );
    }
    // The negative control: a good query passes the same checks.
    let res = call_service(&app, TestRequest::get().uri("/work/echo?ms=5").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(read_body_json::<Value, _>(res).await, json!({"ms": 5}));
}

#[actix_web::test]
async fn a_panicking_handler_is_a_500_and_the_app_keeps_serving() {
    let app = app!(Readiness::default());
    let res = call_service(&app, TestRequest::get().uri("/test/boom").to_request()).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: ErrorBody = read_body_json(res).await;
    assert_eq!(body.error, "internal_error", "{body:?}");
    let res = call_service(&app, TestRequest::get().uri("/work/echo").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK, "served after the panic");
}
