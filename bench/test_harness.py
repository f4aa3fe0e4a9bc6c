"""The bench harness's own logic, without any load: `make test-bench` (python3 -m unittest).

Standard library only, so it runs before the bench's venv exists.
"""
import unittest

import run
from harness import analysis, cost, doc, procstat, report, stats, tables, wrk

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:18999/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   629.92us    1.04ms  12.93ms   92.69%
  Latency Distribution
     50%  361.00us
     75%  501.00us
     90%    1.23ms
     99%    5.65ms
  93620 requests in 1.10s, 10.80MB read
  Socket errors: connect 0, read 2, write 0, timeout 7
  Non-2xx or 3xx responses: 5
Requests/sec:  84776.46
"""
WRK_JSON = ('WRK_JSON {"requests":93620,"duration_us":1104316,"bytes":11328020,"errors":'
            '{"connect":0,"read":2,"write":0,"status":5,"timeout":7},"latency_us":{"min":88,'
            '"mean":629.9,"max":12929,"p50":361,"p90":1231,"p99":5653,"p999":11728}}')


class WrkTest(unittest.TestCase):
    def test_reads_the_json_line_of_the_lua_script(self):
        r = wrk.parse(WRK_OUTPUT + WRK_JSON + "\n")
        self.assertEqual(r.requests, 93620)
        self.assertAlmostEqual(r.duration_s, 1.104316)
        self.assertEqual(r.latency_us["p99"], 5653)
        self.assertEqual(r.error_count, 14)
        self.assertAlmostEqual(r.rps, 93620 / 1.104316)

    def test_falls_back_to_the_human_summary(self):
        r = wrk.parse(WRK_OUTPUT)
        self.assertEqual(r.requests, 93620)
        self.assertAlmostEqual(r.duration_s, 1.10)
        self.assertEqual(r.errors, {"connect": 0, "read": 2, "write": 0, "status": 5,
                                    "timeout": 7})
        self.assertAlmostEqual(r.latency_us["p50"], 361.0)
        self.assertAlmostEqual(r.latency_us["p99"], 5650.0)
        self.assertAlmostEqual(r.latency_us["max"], 12930.0)

    def test_durations_in_every_unit(self):
        r = wrk.parse("  10 requests in 2.00m, 1KB read\n     99%    1.50s\n")
        self.assertAlmostEqual(r.duration_s, 120.0)
        self.assertAlmostEqual(r.latency_us["p99"], 1.5e6)

    def test_no_summary_is_an_error(self):
        with self.assertRaises(ValueError):
            wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")

    def test_command_pins_wrk_and_uses_whole_seconds(self):
        cmd = wrk.command("http://h/", 1000, 1, 5, cpu=1)
        self.assertEqual(cmd[:3], ["taskset", "-c", "1"])
        self.assertIn("-c1000", cmd)
        self.assertIn("-d1s", cmd)
        self.assertIn("--timeout=5s", cmd)
        self.assertNotIn("taskset", wrk.command("http://h/", 10, 3, 5, cpu=None))


class ProcTest(unittest.TestCase):
    def test_cpu_ticks_skip_a_command_name_with_spaces_and_parentheses(self):
        fields = " ".join(str(n) for n in range(3, 53))  # field n holds the number n
        stat = f"4242 (a) (b c) S {fields[2:]}"
        self.assertEqual(procstat.parse_stat_cpu_ticks(stat), 14 + 15)

    def test_status(self):
        text = "Name:\tworker\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n"
        self.assertEqual(procstat.parse_status(text),
                         {"peak_rss_bytes": 20 << 20, "rss_bytes": 10 << 20, "threads": 7})

    def test_voluntary_switches_of_a_task(self):
        text = "Name:\tactix-rt\nvoluntary_ctxt_switches:\t1234\nnonvoluntary_ctxt_switches:\t9\n"
        self.assertEqual(procstat.parse_voluntary_switches(text), 1234)
        self.assertEqual(procstat.parse_voluntary_switches("Name:\tx\n"), 0)

    def test_this_process_sleeps_are_counted_over_its_threads(self):
        import os
        import threading
        import time
        done = threading.Event()

        def sleeper():
            while not done.is_set():
                time.sleep(0.001)

        before = procstat.voluntary_switches(os.getpid())
        t = threading.Thread(target=sleeper)
        t.start()
        # Counted while the thread lives (an ended thread's count goes with it): each sleep
        # is a voluntary switch.
        time.sleep(0.1)
        during = procstat.voluntary_switches(os.getpid())
        done.set()
        t.join()
        self.assertGreaterEqual(during - before, 10)


class StatsTest(unittest.TestCase):
    def test_little_limit(self):
        self.assertAlmostEqual(stats.little_limit(100, 0.010), 10_000)
        self.assertAlmostEqual(stats.little_limit(1000, 0.010, capacity=40), 4_000)
        self.assertAlmostEqual(stats.little_limit(10, 0.010, capacity=40), 1_000)

    def test_run_figures_cpu_per_request(self):
        f = stats.run_figures(requests=100_000, duration_s=2.0, latency_us={"p50": 500, "p99": 2000},
                              errors=0, cpu_s=1.5, threads=4, rss_bytes=8 << 20)
        self.assertAlmostEqual(f["cpu_us_per_req"], 15.0)
        self.assertAlmostEqual(f["server_cpu_pct"], 75.0)
        self.assertAlmostEqual(f["rps"], 50_000)
        self.assertAlmostEqual(f["p99_ms"], 2.0)
        self.assertAlmostEqual(f["rss_mb"], 8.0)
        self.assertIsNone(f["sleeps_per_100_req"])
        f = stats.run_figures(requests=1_000, duration_s=1.0, latency_us={}, errors=0,
                              cpu_s=0.01, threads=2, rss_bytes=0, sleeps=250)
        self.assertAlmostEqual(f["sleeps_per_100_req"], 25.0)

    def test_summary_is_the_median_and_errors_add_up(self):
        runs = [{"rps": r, "errors": e, "requests": 10} for r, e in ((3, 0), (1, 2), (2, 1))]
        s = stats.summarise(runs)
        self.assertEqual(s["rps"], 2)
        self.assertEqual(s["errors"], 3)
        self.assertEqual(s["requests"], 30)
        self.assertIsNone(s["p99_ms"])

    def test_ratio_and_difference_tolerate_missing_figures(self):
        self.assertIsNone(stats.ratio(1.0, None))
        self.assertIsNone(stats.ratio(1.0, 0))
        self.assertIsNone(stats.difference(None, 1.0))


class TableTest(unittest.TestCase):
    def test_text_right_aligns_numbers(self):
        out = tables.render(["name", "req/s"], [["bare", "85,148"], ["worker", "9"]])
        lines = out.splitlines()
        self.assertEqual(lines[0], "name     req/s")
        self.assertEqual(lines[2], "bare    85,148")
        self.assertEqual(lines[3], "worker       9")

    def test_markdown(self):
        out = tables.render(["a", "b"], [["x|y", "1.5 µs"]], markdown=True)
        self.assertEqual(out.splitlines(), ["| a | b |", "|---|---:|", "| x\\|y | 1.5 µs |"])

    def test_a_short_row_is_an_error(self):
        with self.assertRaises(ValueError):
            tables.render(["a", "b"], [["x"]])

    def test_fmt(self):
        self.assertEqual(tables.fmt(None), "n/a")
        self.assertEqual(tables.fmt(12345.678, 0), "12,346")
        self.assertEqual(tables.fmt(1.25, 2, " µs"), "1.25 µs")


def _point(key, path, c, rps, cpu_us, **info):
    summary = {"rps": rps, "p50_ms": 1.0, "p99_ms": 2.0, "cpu_us_per_req": cpu_us,
               "server_cpu_pct": 99.0, "threads": 3, "rss_mb": 12.0, "errors": 0,
               "requests": 1000, "runs": 1}
    return {"key": key, "path": path, "concurrency": c, **info, "summary": summary, "runs": []}


def fixture() -> dict:
    """A run where loopscope costs 30 µs more than bare (target missed) and is 12× FastAPI."""
    ov = [_point("hello/bare", "/", 50, 100_000, 10.0, config="bare"),
          _point("hello/full", "/work/io?ms=0", 50, 25_000, 40.0, config="full"),
          _point("hello/none", "/work/io?ms=0", 50, 50_000, 20.0, config="none"),
          _point("hello/no-dsn", "/work/io?ms=0", 50, 26_000, 38.0, config="no-dsn"),
          _point("hello/fastapi-asgi", "/hello", 50, 2_000, 480.0, config="fastapi-asgi"),
          _point("hello/fastapi-base", "/hello", 50, 500, 1900.0, config="fastapi-base"),
          _point("io10/bare", "/io?ms=10", 100, 9_000, 12.0, config="bare"),
          _point("io10/full", "/work/io?ms=10", 100, 8_950, 45.0, config="full")]
    for layer in analysis.LAYERS:
        ov.append(_point(f"hello/minus-{layer}", "/work/io?ms=0", 50, 27_000, 36.0,
                         config=f"minus-{layer}"))
        ov.append(_point(f"hello/only-{layer}", "/work/io?ms=0", 50, 45_000, 24.0,
                         config=f"only-{layer}"))
    modes = [_point("modes/bare/async/c1000", "/io?ms=10", 1000, 50_000, 20.0, stack="bare",
                    mode="async", work_ms=10, capacity=None)]
    for stack, rps in (("loopscope", 40_000), ("fastapi-asgi", 2_000), ("fastapi-base", 1_000)):
        for mode, cap in (("async", None), ("threadpool", 40), ("block", None)):
            modes.append(_point(f"modes/{stack}/{mode}/c1000", "/x?ms=10", 1000,
                                rps if mode != "block" else 99, 30.0, stack=stack, mode=mode,
                                work_ms=10, capacity=cap))
    scrape = [{"target": "loopscope async worker, admin port", "url_path": "/metrics",
               "idle": {"bytes": 40960, "series": 700, "median_ms": 0.5, "p99_ms": 0.9},
               "under_load": {"median_ms": 0.7, "max_ms": 2.0, "load_rps": 20_000}}]
    meta = {"command": "make bench", "quick": False, "date": "2026-11-22 05:00 UTC",
            "revision": "abc1234", "machine": {"cores": 2, "cpu_model": "AMD EPYC",
                                               "kernel": "6.1"},
            "settings": {"duration_s": 3, "reps": 3, "warmup_s": 1, "timeout_s": 5,
                         "server_cpu": 0, "load_cpu": 1},
            "sentry_dsn": "http://public@127.0.0.1:9/0", "python": "Python 3.11.7",
            "python_packages": ["fastapi 0.163.2"], "wrk_version": "wrk 4.1.0",
            "load_average_start": 3.5, "load_average_end": 0.2}
    # With 2 workers, CPU per request: hello 0.30 of bare (0.25 on one core: +20%), layers
    # 0.5 and io at c=1000 0.667 (as on one core). Throughput: wrk limits every server.
    two = [_point("two/hello/bare", "/", 50, 100_000, 12.0, config="bare"),
           _point("two/hello/full", "/work/cpu?ms=0", 50, 30_000, 40.0, config="full"),
           _point("two/hello/none", "/work/cpu?ms=0", 50, 60_000, 20.0, config="none"),
           _point("two/io1000/bare", "/io?ms=10", 1000, 50_000, 20.0, config="bare"),
           _point("two/io1000/full", "/work/io?ms=10", 1000, 40_000, 30.0, config="full")]
    return {"meta": meta, "overhead": ov, "modes": modes, "two_workers": two, "scrape": scrape}


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.results = fixture()
        self.a = report.analyse(self.results)
        self.targets = {t["target"]: t for t in self.a["targets"]}

    def test_layers_alone_and_removed(self):
        layer = self.a["overhead"]["layers"][0]
        self.assertAlmostEqual(layer["alone_us"], 4.0)      # 24 - 20
        self.assertAlmostEqual(layer["cpu_us"], 4.0)        # 40 - 36
        self.assertAlmostEqual(self.a["overhead"]["instrumentation_us"], 20.0)
        self.assertAlmostEqual(self.a["overhead"]["route_us"], 10.0)

    def test_targets(self):
        t = self.targets
        layers = t["1. every layer on vs every layer off, CPU per request"]
        self.assertFalse(layers["met"])                                     # 40 - 20
        self.assertEqual(layers["measured"], "20.0 µs")
        self.assertIn("sentry 4.0 µs alone", layers["why"])
        cpu = t["2. cheapest route, every layer on, CPU over bare hello"]
        self.assertFalse(cpu["met"])
        self.assertEqual(cpu["measured"], "30.0 µs")
        self.assertIn("10.0 µs over bare hello", cpu["why"])
        self.assertFalse(t["2. hello-class throughput vs bare, one core"]["met"])   # 0.25
        self.assertTrue(t["3. 10 ms of async work at c=100 vs bare"]["met"])       # 0.994
        c1k = t["4. async io 10 ms at c=1000 vs bare, one core"]
        self.assertTrue(c1k["met"])                                                # 0.8
        self.assertEqual(c1k["measured"], "0.800")
        self.assertTrue(t["5. loopscope vs FastAPI, hello-class route"]["met"])   # 12.5×
        seeds = t["5. loopscope vs FastAPI, async io at c=1000"]
        self.assertTrue(seeds["met"])                                              # 20×
        self.assertEqual(seeds["why"], "")
        two = t["6. the same ratios with 2 workers on both cores"]
        self.assertFalse(two["met"])                                               # +20%
        self.assertEqual(two["measured"], "20% apart at worst")
        self.assertIn("0.250 on one core, 0.300 with 2 workers", two["why"])
        self.assertIn("CPU per request", two["why"])
        io = self.a["two_workers"]["ratios"][2]
        self.assertAlmostEqual(io["one"], 20.0 / 30.0)       # CPU per request, bare over ours
        self.assertAlmostEqual(io["two_rps"], 0.8)           # throughput, shown beside it
        metrics = t["7. /metrics p50 under load, admin port"]
        self.assertTrue(metrics["met"])                                            # 0.7 ms
        self.assertEqual(metrics["measured"], "0.70 ms")

    def test_a_slow_scrape_and_a_missing_section_are_reported(self):
        results = fixture()
        results["scrape"][0]["under_load"]["median_ms"] = 1.5
        results["two_workers"] = []
        t = {x["target"]: x for x in report.analyse(results)["targets"]}
        self.assertFalse(t["7. /metrics p50 under load, admin port"]["met"])
        self.assertIn("idle median 0.50 ms", t["7. /metrics p50 under load, admin port"]["why"])
        self.assertIsNone(t["6. the same ratios with 2 workers on both cores"]["met"])
        self.assertIn("not measured", report.terminal(results))

    def test_seed_ratios_use_the_faster_variant(self):
        hello = self.a["seeds"][0]
        self.assertEqual(hello["faster"], "fastapi-asgi")
        self.assertAlmostEqual(hello["rps_ratio"], 12.5)

    def test_little_ratio_caps_threadpool_by_its_pool(self):
        tp = next(r for r in self.a["modes"] if r["stack"] == "loopscope"
                  and r["mode"] == "threadpool")
        self.assertAlmostEqual(tp["little_limit"], 4_000)
        self.assertAlmostEqual(tp["little_ratio"], 10.0)

    def test_terminal_table_names_what_was_missed(self):
        out = report.terminal(self.results)
        self.assertIn("== Targets", out)
        self.assertIn("MISSED 1. every layer on vs every layer off", out)
        self.assertIn("PASS", out)

    def test_document_says_machine_date_command_and_why(self):
        md = doc.render_doc(self.results)
        self.assertTrue(md.startswith("<!-- Generated by `make bench`"))
        self.assertIn("2 cores, AMD EPYC", md)
        self.assertIn("2026-11-22 05:00 UTC", md)
        self.assertIn("`make bench`", md)
        self.assertIn("the machine was shared", md)
        self.assertIn("Missed, and why", md)
        self.assertIn("| bare actix-web hello (bench-hello, `/`) |", md)

    def test_cpu_model(self):
        self.assertEqual(run.cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"),
                         "AMD EPYC 7B13")
        self.assertEqual(run.cpu_model(""), "unknown CPU model")


class CostTest(unittest.TestCase):
    """The callgrind guard's arithmetic (`make test-cost` runs the real thing)."""

    def test_totals_of_a_callgrind_file(self):
        out = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfn=main\n1 5\ntotals: 123456\n"
        self.assertEqual(cost.parse_totals(out), 123456)
        self.assertEqual(cost.parse_totals("events: Ir\nsummary: 42\n"), 42)
        with self.assertRaises(ValueError):
            cost.parse_totals("events: Ir\n")

    def test_start_up_and_warm_up_cancel_out(self):
        # 1,000,000 to start and warm up, 30,000 a request.
        self.assertEqual(cost.per_request(1_000_000 + 100 * 30_000, 100,
                                          1_000_000 + 600 * 30_000, 600), 30_000)
        with self.assertRaises(ValueError):
            cost.per_request(1, 100, 2, 100)

    def test_a_regression_past_the_tolerance_fails(self):
        self.assertTrue(cost.Verdict("x", 10_900, 10_000).ok)
        self.assertTrue(cost.Verdict("x", 11_000, 10_000).ok)
        bad = cost.Verdict("x", 11_001, 10_000)
        self.assertFalse(bad.ok)
        self.assertIn("REGRESSION", bad.line())
        self.assertIn("lower it", cost.Verdict("x", 8_000, 10_000).line())


if __name__ == "__main__":
    unittest.main()
