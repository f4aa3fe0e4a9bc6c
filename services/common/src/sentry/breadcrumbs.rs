//! Log lines at warn and above become Sentry breadcrumbs, each tagged with the request it was
//! logged for, so an event carries the warnings of its own request and of none other (one hub
//! serves every request of a thread, see `init.rs`). An info line, the access log of every
//! request, costs one level comparison here.
//!
//! Not sentry-tracing's `BreadcrumbLayer`: it cannot add the request id, and its converter
//! for custom mappings is deprecated. The conversion itself is these few lines.
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use sentry::protocol::{Breadcrumb, Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

pub(crate) struct Breadcrumbs;

/// Set once the client is up: without Sentry, warnings are not converted at all.
static ENABLED: AtomicBool = AtomicBool::new(false);

pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    data: Map<String, Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, format!("{value:?}").into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, value.into());
    }
}

impl Fields {
    fn record(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = value
                .as_str()
                .map(str::to_owned)
                .or(Some(value.to_string()));
        } else {
            self.data.insert(field.name().to_owned(), value);
        }
    }
}

impl<S: Subscriber> Layer<S> for Breadcrumbs {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > Level::WARN || !ENABLED.load(Ordering::Relaxed) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let Some(id) = crate::request_tracking::current_request_id() {
            fields.data.insert("request_id".to_owned(), id.into());
        }
        sentry::add_breadcrumb(Breadcrumb {
            category: Some(event.metadata().target().to_owned()),
            level: if level == Level::ERROR {
                sentry::Level::Error
            } else {
                sentry::Level::Warning
            },
            message: fields.message,
            data: fields.data,
            ..Default::default()
        });
    }
}

/// Keeps the breadcrumbs of `event`'s own request, and those logged outside any request.
pub(crate) fn keep_own(
    mut event: sentry::protocol::Event<'static>,
) -> Option<sentry::protocol::Event<'static>> {
    let own = event.tags.get("request_id").cloned();
    event
        .breadcrumbs
        .values
        .retain(|b| match b.data.get("request_id").and_then(Value::as_str) {
            None => true,
            Some(id) => Some(id) == own.as_deref(),
        });
    Some(event)
}
