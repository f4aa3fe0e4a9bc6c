//! The text exposition of the registry. /metrics is a real route, whether on the admin port
//! or mounted on the app port: actix-web-prom's own endpoint rewrites the response of an
//! unmatched route, so every other middleware (Sentry, logs, stall detection) would see each
//! scrape as a 404 on an unknown path.
use actix_web::{HttpResponse, web};
use prometheus::{Encoder, Registry, TextEncoder};

pub fn render(registry: &Registry) -> Result<String, prometheus::Error> {
    let mut buf = Vec::with_capacity(16 * 1024);
    TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub async fn metrics_handler(registry: web::Data<Registry>) -> HttpResponse {
    match render(&registry) {
        Ok(body) => HttpResponse::Ok()
            .content_type(prometheus::TEXT_FORMAT)
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}
