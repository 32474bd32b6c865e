//! Log lines on their way to pino: the proxy queues them (JSON objects with `level` and `msg`), JavaScript takes
//! them all at once on a timer (`drainLogs`), so no JavaScript runs per request or per line. The queue is
//! bounded: a flood of lines costs a count of those dropped, never memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{Map, Value};

/// Lines kept until JavaScript takes them; more are counted and dropped.
pub const QUEUE_LIMIT: usize = 10_000;

#[derive(Default)]
pub struct LogQueue {
    lines: Mutex<VecDeque<String>>,
    dropped: AtomicU64,
}

impl LogQueue {
    /// Queues one line: `fields` plus `level` and `msg`.
    pub fn push(&self, level: &'static str, msg: &str, mut fields: Map<String, Value>) {
        fields.insert("level".into(), Value::from(level));
        fields.insert("msg".into(), Value::from(msg));
        let line = Value::Object(fields).to_string();
        let Ok(mut lines) = self.lines.lock() else { return };
        if lines.len() >= QUEUE_LIMIT {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        lines.push_back(line);
    }

    /// Every line queued, oldest first, and how many were dropped since the last drain.
    pub fn drain(&self) -> (Vec<String>, u64) {
        let lines = self.lines.lock().map(|mut l| l.drain(..).collect()).unwrap_or_default();
        (lines, self.dropped.swap(0, Ordering::Relaxed))
    }
}

/// `json!`-like: a field map from pairs.
#[macro_export]
macro_rules! log_fields {
    ($($k:literal => $v:expr),* $(,)?) => {{
        let mut m = serde_json::Map::new();
        $( m.insert($k.to_string(), serde_json::Value::from($v)); )*
        m
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_level_and_msg_and_the_queue_is_bounded() {
        let q = LogQueue::default();
        q.push("warn", "upstream request failed", log_fields! { "requestId" => "abc", "status" => 502 });
        let (lines, dropped) = q.drain();
        assert_eq!(dropped, 0);
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!((v["level"].as_str(), v["msg"].as_str(), v["requestId"].as_str(), v["status"].as_u64()), (Some("warn"), Some("upstream request failed"), Some("abc"), Some(502)));
        for _ in 0..QUEUE_LIMIT + 5 {
            q.push("info", "x", Map::new());
        }
        let (lines, dropped) = q.drain();
        assert_eq!((lines.len(), dropped), (QUEUE_LIMIT, 5));
        assert_eq!(q.drain().0.len(), 0);
    }
}
