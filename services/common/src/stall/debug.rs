//! `GET /debug/stalls` on the admin port: recent stalls with their stacks, and polls blocked
//! right now. The admin server has its own thread, so this answers while every app worker is
//! blocked; it only copies the ring (a short lock) and reads the slots' atomics.
use actix_web::{HttpResponse, web};

use super::report::StallMonitor;

pub(crate) async fn debug_stalls(monitor: Option<web::Data<StallMonitor>>) -> HttpResponse {
    match monitor {
        Some(monitor) => HttpResponse::Ok().json(monitor.view()),
        None => HttpResponse::NotFound().json(contract::ErrorBody {
            error: "stall_detection_off".to_owned(),
            message: "stall detection is switched off (--disable-layers stall)".to_owned(),
            param: None,
            request_id: None,
            details: None,
        }),
    }
}
