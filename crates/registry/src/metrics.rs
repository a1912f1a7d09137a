//! Counters exposed at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the request-duration histogram.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0];

/// The registry's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    duration_buckets: [AtomicU64; BUCKETS.len()],
    duration_count: AtomicU64,
    duration_sum_micros: AtomicU64,
    /// Blob bytes sent to clients.
    pub bytes_sent: AtomicU64,
    /// Blob bytes received from clients.
    pub bytes_received: AtomicU64,
    /// Requests being served.
    pub in_flight: AtomicU64,
    /// Garbage collections run.
    pub gc_runs: AtomicU64,
    /// Blobs the collector deleted.
    pub gc_blobs_deleted: AtomicU64,
}

impl Metrics {
    /// Records a finished request.
    pub fn observe(&self, method: &str, status: u16, took: Duration) {
        {
            let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *m.entry((method.to_string(), status)).or_insert(0) += 1;
        }
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.duration_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.duration_count.fetch_add(1, Ordering::Relaxed);
        self.duration_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition; `uploads` is the number of open upload sessions.
    pub fn render(&self, uploads: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP berth_registry_http_requests_total HTTP requests by method and status."
        );
        let _ = writeln!(s, "# TYPE berth_registry_http_requests_total counter");
        for ((m, c), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                s,
                "berth_registry_http_requests_total{{method=\"{m}\",code=\"{c}\"}} {n}"
            );
        }
        let _ = writeln!(
            s,
            "# HELP berth_registry_http_request_duration_seconds Request latency."
        );
        let _ = writeln!(
            s,
            "# TYPE berth_registry_http_request_duration_seconds histogram"
        );
        for (i, b) in BUCKETS.iter().enumerate() {
            let n = self.duration_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                s,
                "berth_registry_http_request_duration_seconds_bucket{{le=\"{b}\"}} {n}"
            );
        }
        let count = self.duration_count.load(Ordering::Relaxed);
        let _ = writeln!(
            s,
            "berth_registry_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.duration_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(s, "berth_registry_http_request_duration_seconds_sum {sum}");
        let _ = writeln!(
            s,
            "berth_registry_http_request_duration_seconds_count {count}"
        );
        let gauges = [
            (
                "berth_registry_blob_bytes_sent_total",
                "counter",
                self.bytes_sent.load(Ordering::Relaxed),
            ),
            (
                "berth_registry_blob_bytes_received_total",
                "counter",
                self.bytes_received.load(Ordering::Relaxed),
            ),
            (
                "berth_registry_http_requests_in_flight",
                "gauge",
                self.in_flight.load(Ordering::Relaxed),
            ),
            ("berth_registry_upload_sessions", "gauge", uploads as u64),
            (
                "berth_registry_gc_runs_total",
                "counter",
                self.gc_runs.load(Ordering::Relaxed),
            ),
            (
                "berth_registry_gc_blobs_deleted_total",
                "counter",
                self.gc_blobs_deleted.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, v) in gauges {
            let _ = writeln!(s, "# TYPE {name} {kind}");
            let _ = writeln!(s, "{name} {v}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.observe("GET", 200, Duration::from_micros(800));
        m.observe("GET", 200, Duration::from_millis(20));
        m.observe("PUT", 201, Duration::from_secs(2));
        let t = m.render(3);
        assert!(
            t.contains("berth_registry_http_requests_total{method=\"GET\",code=\"200\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("berth_registry_http_request_duration_seconds_bucket{le=\"0.001\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("berth_registry_http_request_duration_seconds_bucket{le=\"+Inf\"} 3"),
            "{t}"
        );
        assert!(t.contains("berth_registry_upload_sessions 3"), "{t}");
    }
}
