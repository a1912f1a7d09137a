//! Go's escaping builtins (`html`, `js`, `urlquery`) and `slice`.

use serde_json::Value;

use super::exec::Val;
use super::value::type_name;

/// Go's `template.HTMLEscapeString`.
pub(crate) fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(crate) fn js(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}') => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn index_arg(v: Option<&Value>, cap: usize) -> Result<usize, String> {
    let i = match v {
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| format!("cannot index slice/array with type {}", type_name(v)))?;
    match usize::try_from(i) {
        Ok(u) if u <= cap => Ok(u),
        _ => Err(format!("index out of range: {i}")),
    }
}

/// Go's `slice item i j k`.
pub(crate) fn slice<'a>(item: &Val<'a>, indexes: &[Option<&Value>]) -> Result<Val<'a>, String> {
    let v = match item.get() {
        None | Some(Value::Null) => return Err("slice of untyped nil".to_string()),
        Some(v) => v,
    };
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match v {
        Value::String(_) if indexes.len() == 3 => {
            return Err("cannot 3-index slice a string".to_string());
        }
        Value::String(s) => s.len(),
        Value::Array(a) => a.len(),
        other => {
            return Err(format!(
                "can't slice item of type {}",
                type_name(Some(other))
            ))
        }
    };
    let mut idx = [0, len, len];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(*index, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(Val::Owned(match v {
        Value::String(s) => {
            Value::String(String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned())
        }
        Value::Array(a) => Value::Array(a[idx[0]..idx[1]].to_vec()),
        _ => Value::Null,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapers_match_go() {
        assert_eq!(
            html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            js("a'b\"c\\<=>&\n"),
            r#"a\'b\"c\\\u003C\u003D\u003E\u0026\u000A"#
        );
        assert_eq!(js("é"), "é");
        assert_eq!(query("a b&c=d/é~"), "a+b%26c%3Dd%2F%C3%A9~");
    }

    fn run(item: Value, idx: &[Value]) -> Result<Value, String> {
        let refs: Vec<Option<&Value>> = idx.iter().map(Some).collect();
        slice(&Val::Owned(item), &refs).map(|v| v.get().cloned().unwrap_or(Value::Null))
    }

    #[test]
    fn slice_like_go() {
        assert_eq!(run(json!("hello"), &[json!(1), json!(3)]), Ok(json!("el")));
        assert_eq!(run(json!("hello"), &[json!(2)]), Ok(json!("llo")));
        assert_eq!(run(json!([1, 2, 3]), &[json!(1)]), Ok(json!([2, 3])));
        assert_eq!(
            run(json!([1, 2, 3]), &[json!(0), json!(1), json!(2)]),
            Ok(json!([1]))
        );
        assert_eq!(
            run(json!([1]), &[json!(2)]),
            Err("index out of range: 2".into())
        );
        assert_eq!(
            run(json!([1, 2]), &[json!(2), json!(1)]),
            Err("invalid slice index: 2 > 1".into())
        );
        assert_eq!(
            run(json!("ab"), &[json!(0), json!(1), json!(2)]),
            Err("cannot 3-index slice a string".into())
        );
        assert_eq!(run(json!(null), &[]), Err("slice of untyped nil".into()));
        assert_eq!(
            run(json!(3), &[]),
            Err("can't slice item of type int".into())
        );
    }
}
