//! Run a closure when a value is dropped: gauges that must come back down even when a
//! request is cancelled half way.
pub(crate) struct Deferred<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for Deferred<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

pub(crate) fn defer<F: FnOnce()>(f: F) -> Deferred<F> {
    Deferred(Some(f))
}
