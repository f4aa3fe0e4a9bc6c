//! `bench-hello PORT [WORKERS]`: a bare actix-web server, no middleware, no logs, no metrics:
//! the baseline of `make bench`. `GET /` answers `hello`; `GET /io?ms=N` answers after an
//! N ms timer, like the worker's async `/work/io`; `GET /healthz` is for the bench's checks.
//!
//! It is also the bench's Sentry: `POST /api/{project}/envelope/` takes an envelope and
//! answers 200 at once, as a healthy Sentry does, and `GET /envelopes` says how many it took,
//! so the bench measures loopscope reporting to a Sentry that works (a closed port measures
//! the transport's backoff instead). The routes after `/` do not slow `/`.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

static ENVELOPES: AtomicU64 = AtomicU64::new(0);

async fn envelope(_body: web::Bytes) -> &'static str {
    ENVELOPES.fetch_add(1, Ordering::Relaxed);
    "{}"
}

async fn envelopes() -> String {
    ENVELOPES.load(Ordering::Relaxed).to_string()
}

async fn hello() -> &'static str {
    "hello"
}

async fn io(req: HttpRequest) -> HttpResponse {
    let ms = req
        .query_string()
        .strip_prefix("ms=")
        .and_then(|v| v.parse::<u64>().ok());
    match ms {
        Some(ms) => {
            actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
            HttpResponse::Ok().body("done")
        }
        None => HttpResponse::BadRequest().body("usage: /io?ms=N"),
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || std::io::Error::other("usage: bench-hello PORT [WORKERS]");
    let port: u16 = args.next().and_then(|p| p.parse().ok()).ok_or_else(usage)?;
    let workers: usize = match args.next() {
        Some(w) => w.parse().map_err(|_| usage())?,
        None => 1,
    };
    actix_web::rt::System::new().block_on(
        HttpServer::new(|| {
            App::new()
                .route("/", web::get().to(hello))
                .route("/healthz", web::get().to(hello))
                .route("/io", web::get().to(io))
                .app_data(web::PayloadConfig::new(16 << 20))
                .route("/api/{project}/envelope/", web::post().to(envelope))
                .route("/envelopes", web::get().to(envelopes))
        })
        .workers(workers)
        .bind(("127.0.0.1", port))?
        .run(),
    )
}
