//! The whole local stack on free ports: backend, both workers pointing at it, and the
//! gateway pointing at them. Extra flags per service let each test shape it.
use crate::{Service, start};

pub struct Stack {
    pub backend: Service,
    pub worker_async: Service,
    pub worker_threadpool: Service,
    pub gateway: Service,
}

/// Extra flags for each kind of process of a [`Stack`].
#[derive(Default)]
pub struct StackArgs<'a> {
    pub backend: &'a [&'a str],
    pub worker: &'a [&'a str],
    pub gateway: &'a [&'a str],
}

impl Stack {
    /// One actix worker each and a backend answering in 10 ms: quick, for functional tests.
    pub fn small() -> Self {
        Self::start(StackArgs {
            backend: &["--latency-ms", "10", "--workers", "1"],
            worker: &["--workers", "1"],
            gateway: &["--workers", "1"],
        })
    }

    pub fn start(args: StackArgs<'_>) -> Self {
        let backend = start("backend", args.backend);
        let backend_url = backend.base_url();
        let worker = |handling: &str| {
            let flags = [
                &["--handling", handling, "--backend-url", &backend_url][..],
                args.worker,
            ]
            .concat();
            start("worker", &flags)
        };
        let (worker_async, worker_threadpool) = (worker("async"), worker("threadpool"));
        let (async_url, threadpool_url) = (worker_async.base_url(), worker_threadpool.base_url());
        let flags = [
            &[
                "--worker-async-url",
                &async_url,
                "--worker-threadpool-url",
                &threadpool_url,
            ][..],
            args.gateway,
        ]
        .concat();
        let gateway = start("gateway", &flags);
        Self {
            backend,
            worker_async,
            worker_threadpool,
            gateway,
        }
    }
}
