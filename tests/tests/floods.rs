//! Connection floods (issue 11): memory comes back after a flood of idle connections, and
//! `--max-connections` bounds what a flood can hold open. Loopback only, bounded in count and time.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use loopscope_tests::start;

/// Resident set size of `pid` in MiB.
fn rss_mib(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap();
    kib / 1024.0
}

/// Lets this process (and the services it starts) open `want` descriptors, if the hard limit allows.
fn raise_fd_limit(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on our own process with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        if limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    limit.rlim_cur
}

#[test]
fn memory_comes_back_after_a_flood_of_idle_connections() {
    // Measures the worker's RSS before, during and after a flood of 3,000 connections.
    let _machine = loopscope_tests::machine::exclusive();
    let flood = 3_000;
    let limit = raise_fd_limit(flood as u64 + 512);
    assert!(limit >= flood as u64 + 256, "descriptor limit {limit}");
    let svc = start("worker", &["--handling", "async", "--workers", "2"]);
    // The base after start-up's own growth: loading the debug info for stall stacks takes
    // seconds in a debug build and tens of MiB, which a base taken earlier counts as the
    // flood's (a CI run saw 186 -> 217 -> 196.5 MiB).
    loopscope_tests::wait_for_log(&svc, "stall capture ready");
    for _ in 0..20 {
        assert_eq!(svc.get("/work/io?ms=0").0, 200);
    }
    std::thread::sleep(Duration::from_millis(500));
    let base = rss_mib(svc.pid());
    let started = Instant::now();
    let idle: Vec<TcpStream> = (0..flood)
        .map(|_| TcpStream::connect(svc.app).expect("connect"))
        .collect();
    // Every connection accepted and set up (its buffers allocated): a request still answers.
    assert_eq!(svc.get("/work/io?ms=0").0, 200);
    std::thread::sleep(Duration::from_millis(500));
    let during = rss_mib(svc.pid());
    drop(idle);
    // The trimmer looks every 2 s.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut after = rss_mib(svc.pid());
    while after - base > (during - base) / 2.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        after = rss_mib(svc.pid());
    }
    println!(
        "{flood} idle connections: RSS {base:.1} MiB -> {during:.1} during -> {after:.1} after ({:?})",
        started.elapsed()
    );
    // Negative control: the flood did cost memory, so coming back means something.
    assert!(
        during - base >= 10.0,
        "the flood cost only {:.1} MiB",
        during - base
    );
    // At least half of what the flood took is handed back (release: 117 -> 198 -> 117 MiB).
    assert!(
        after - base <= (during - base) / 2.0,
        "RSS stayed high: {base:.1} -> {during:.1} -> {after:.1} MiB"
    );
    assert!(
        svc.logs()
            .iter()
            .any(|l| l.contains("connection flood drained")),
        "the trim is logged"
    );
}

#[test]
fn max_connections_bounds_what_a_flood_holds_open() {
    let _machine = loopscope_tests::machine::shared();
    raise_fd_limit(1_024);
    let svc = start(
        "worker",
        &[
            "--handling",
            "async",
            "--workers",
            "1",
            "--max-connections",
            "50",
        ],
    );
    let held: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(svc.app).expect("connect"))
        .collect();
    // The 51st connects (the kernel's backlog takes it) but is not served while 50 are open.
    let mut extra = TcpStream::connect(svc.app).expect("connect");
    extra
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    extra
        .write_all(b"GET /work/io?ms=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        extra.read(&mut buf).is_err(),
        "served past --max-connections"
    );
    // One closes: the waiting connection is accepted and answered.
    drop(held);
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = extra.read(&mut buf).expect("answered once below the limit");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
}
