//! The event bus: every state change publishes an [`Event`] (Docker's `/events` message). Live subscribers
//! get a broadcast; a bounded history answers `--since`.

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::broadcast;

const HISTORY: usize = 1024;

/// One event, in Docker's shape (`Type`, `Action`, `Actor`, `time`, `timeNano`, `scope`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    // Deprecated fields docker still sends for containers; kept for old clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

pub struct EventBus {
    tx: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        EventBus {
            tx,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }

    /// Publish an event about `id` of `kind` ("container", "image") with `action` ("start", "die", ...).
    pub fn publish(
        &self,
        kind: &str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let legacy = kind == "container" || kind == "image";
        let ev = Event {
            kind: kind.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes: attributes.clone(),
            },
            scope: "local".into(),
            time: now.timestamp(),
            time_nano: nanos,
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: if kind == "container" {
                attributes.get("image").cloned()
            } else {
                None
            },
        };
        if let Ok(mut h) = self.history.lock() {
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// A live subscription plus the past events with `time_nano >= since_nanos` (when given).
    pub fn subscribe(&self, since_nanos: Option<i64>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let h = self.history.lock().map(|h| h.clone()).unwrap_or_default();
        let rx = self.tx.subscribe();
        let past = match since_nanos {
            Some(s) => h.into_iter().filter(|e| e.time_nano >= s).collect(),
            None => Vec::new(),
        };
        (past, rx)
    }
}

/// Event filters as Docker takes them (`type`, `event`/`action`, `container`, `image`, `label`), each a set of
/// accepted values; an empty map accepts everything.
pub fn matches(ev: &Event, filters: &BTreeMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(key, wanted)| {
        if wanted.is_empty() {
            return true;
        }
        match key.as_str() {
            "type" => wanted.contains(&ev.kind),
            "event" | "action" => wanted
                .iter()
                .any(|w| *w == ev.action || ev.action.starts_with(&format!("{w}:"))),
            "container" => {
                ev.kind == "container"
                    && wanted.iter().any(|w| {
                        ev.actor.id.starts_with(w.as_str())
                            || ev.actor.attributes.get("name") == Some(w)
                    })
            }
            "image" => wanted.iter().any(|w| {
                ev.actor.attributes.get("image") == Some(w)
                    || (ev.kind == "image"
                        && (ev.actor.id == *w || ev.actor.attributes.get("name") == Some(w)))
            }),
            "label" => wanted.iter().any(|w| match w.split_once('=') {
                Some((k, v)) => ev.actor.attributes.get(k).map(String::as_str) == Some(v),
                None => ev.actor.attributes.contains_key(w),
            }),
            _ => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_and_filters() {
        let bus = EventBus::new();
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), "web".to_string());
        attrs.insert("image".to_string(), "busybox".to_string());
        bus.publish("container", "start", "abc123", attrs.clone());
        bus.publish("image", "tag", "sha256:1", BTreeMap::new());
        let (past, _rx) = bus.subscribe(Some(0));
        assert_eq!(past.len(), 2);
        let mut f = BTreeMap::new();
        f.insert("container".to_string(), vec!["web".to_string()]);
        assert!(matches(&past[0], &f));
        assert!(!matches(&past[1], &f));
        f.clear();
        f.insert("type".to_string(), vec!["image".to_string()]);
        assert!(!matches(&past[0], &f));
        assert!(matches(&past[1], &f));
        let json = serde_json::to_value(&past[0]).unwrap();
        assert_eq!(json["Actor"]["Attributes"]["name"], "web");
        assert_eq!(json["status"], "start");
    }
}
