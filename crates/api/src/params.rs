//! Query-string helpers: Docker's booleans (`1`, `true`, `True`), filters (JSON map of lists, or the old map
//! of bools), and times (unix seconds with optional fraction).

use crate::error::{ApiError, ApiResult};
use std::collections::{BTreeMap, HashMap};

pub type Query = HashMap<String, String>;

pub fn flag(q: &Query, key: &str) -> bool {
    q.get(key)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

pub fn filters(q: &Query) -> ApiResult<BTreeMap<String, Vec<String>>> {
    let Some(raw) = q.get("filters").filter(|s| !s.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("invalid filter: not an object"))?;
    let mut out = BTreeMap::new();
    for (k, val) in obj {
        let list: Vec<String> = match val {
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(_, b)| b.as_bool() == Some(true))
                .map(|(k, _)| k.clone())
                .collect(),
            _ => return Err(ApiError::bad_request(format!("invalid filter for {k}"))),
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

/// `1700000000`, `1700000000.123456789` → nanoseconds.
pub fn unix_nanos(v: &str) -> ApiResult<i64> {
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = s
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid time value: {v}")))?;
    let mut f = frac.to_string();
    f.truncate(9);
    while f.len() < 9 {
        f.push('0');
    }
    let n: i64 = if frac.is_empty() {
        0
    } else {
        f.parse()
            .map_err(|_| ApiError::bad_request(format!("invalid time value: {v}")))?
    };
    Ok(secs * 1_000_000_000 + n)
}

pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_slice(b"{}")
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_query_conventions() {
        let mut q = Query::new();
        q.insert("all".into(), "1".into());
        q.insert(
            "filters".into(),
            r#"{"status":["exited"],"dangling":{"true":true}}"#.into(),
        );
        assert!(flag(&q, "all"));
        assert!(!flag(&q, "size"));
        let f = filters(&q).unwrap();
        assert_eq!(f["status"], vec!["exited"]);
        assert_eq!(f["dangling"], vec!["true"]);
        assert_eq!(unix_nanos("12.5").unwrap(), 12_500_000_000);
        assert!(unix_nanos("x").is_err());
        q.insert("filters".into(), "{bad".into());
        assert!(filters(&q).is_err());
    }
}
