//! The text exposition of the registry. /metrics is a real route, whether on the admin port
//! or mounted on the app port: actix-web-prom's own endpoint rewrites the response of an
//! unmatched route, so every other middleware (Sentry, logs, stall detection) would see each
//! scrape as a 404 on an unknown path.
use actix_web::{HttpResponse, web};

use super::Registry;

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4";

pub fn render(registry: &Registry) -> String {
    registry.render()
}

pub async fn metrics_handler(registry: web::Data<Registry>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(TEXT_FORMAT)
        .body(render(&registry))
}
