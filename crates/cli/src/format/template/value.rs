//! How Go prints values: `fmt`'s `%v`, `strconv.Quote`, `%g` float formatting and
//! `encoding/json`'s compact encoder.
//!
//! Template data is a [`serde_json::Value`]; these functions render it the way the docker CLI
//! renders the equivalent Go values: integers without a fraction, floats with Go's shortest `%v`
//! form (`1e+06`), maps as `map[k:v]` with sorted keys, slices as `[a b]`, JSON nulls as `<nil>`
//! inside containers. The JSON encoder matches Go's byte for byte (sorted keys, `\u2028`
//! escaping, optional HTML escaping, Go's float layout).

use serde_json::{Number, Value};

/// Go's name for the dynamic type of a JSON value, as in `interface{}` decoded data.
pub(crate) fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None | Some(Value::Null) => "<nil>",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(n)) if n.is_f64() => "float64",
        Some(Value::Number(_)) => "int",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "[]interface {}",
        Some(Value::Object(_)) => "map[string]interface {}",
    }
}

/// Formats a value like Go's `fmt.Sprint` (`%v`).
pub(crate) fn go_sprint(v: &Value) -> String {
    let mut out = String::new();
    write_v(v, &mut out);
    out
}

fn write_v(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            // Go prints maps sorted by key, whatever order the map keeps.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_v(item, out);
            }
            out.push(']');
        }
    }
}

/// A JSON number as Go's `%v` prints it: integers as integers, floats in `%g` shortest form.
pub(crate) fn go_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    go_float_g(n.as_f64().unwrap_or(0.0), None)
}

/// Decimal digits of a finite, non-negative float: (digits without trailing zeros, decimal point
/// position), Go's `decimal` representation. `sig` is a number of significant digits to round
/// to, or `None` for the shortest representation that round-trips.
fn decimal_digits(abs: f64, sig: Option<usize>) -> (String, i32) {
    if abs == 0.0 {
        return (String::new(), 0);
    }
    let sci = match sig {
        Some(p) => format!("{:.*e}", p.saturating_sub(1), abs),
        None => format!("{abs:e}"),
    };
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0').to_string();
    if digits.is_empty() {
        return (String::new(), 0);
    }
    (digits, exp + 1)
}

fn fmt_e(neg: bool, digits: &str, dp: i32, frac: usize, out: &mut String) {
    if neg {
        out.push('-');
    }
    let mut ds = digits.chars();
    out.push(ds.next().unwrap_or('0'));
    if frac > 0 {
        out.push('.');
        let rest: String = ds.collect();
        out.push_str(&rest);
        for _ in rest.len()..frac {
            out.push('0');
        }
    }
    let exp = if digits.is_empty() { 0 } else { dp - 1 };
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
}

fn fmt_f(neg: bool, digits: &str, dp: i32, frac: usize, out: &mut String) {
    if neg {
        out.push('-');
    }
    let d = digits.as_bytes();
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(d.get(i).map_or('0', |b| *b as char));
        }
    } else {
        out.push('0');
    }
    if frac > 0 {
        out.push('.');
        for i in 0..frac as i32 {
            let idx = dp + i;
            let c = if idx < 0 {
                '0'
            } else {
                d.get(idx as usize).map_or('0', |b| *b as char)
            };
            out.push(c);
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'g', prec, 64)` (`prec = None` is the shortest form, `-1`).
pub(crate) fn go_float_g(f: f64, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let neg = f.is_sign_negative() && f != 0.0;
    let prec = prec.map(|p| p.max(1));
    let (digits, dp) = decimal_digits(f.abs(), prec);
    let nd = digits.len() as i32;
    let mut eprec = match prec {
        Some(p) => p as i32,
        None => 6,
    };
    if prec.is_some() && eprec > nd && nd >= dp {
        eprec = nd;
    }
    let exp = dp - 1;
    let mut out = String::new();
    if !digits.is_empty() && (exp < -4 || exp >= eprec) {
        let p = match prec {
            Some(p) => (p as i32).min(nd),
            None => nd,
        };
        fmt_e(neg, &digits, dp, (p - 1).max(0) as usize, &mut out);
        return out;
    }
    let p = match prec {
        Some(p) if (p as i32) > dp => nd,
        Some(p) => p as i32,
        None => nd.max(dp),
    };
    fmt_f(neg, &digits, dp, (p - dp).max(0) as usize, &mut out);
    out
}

/// Go's `strconv.FormatFloat(f, 'f', prec, 64)` with a fixed number of decimals.
pub(crate) fn go_float_f(f: f64, prec: usize) -> String {
    if !f.is_finite() {
        return go_float_g(f, None);
    }
    format!("{f:.prec$}")
}

/// Go's `strconv.FormatFloat(f, 'e', prec, 64)`.
pub(crate) fn go_float_e(f: f64, prec: usize) -> String {
    if !f.is_finite() {
        return go_float_g(f, None);
    }
    let neg = f.is_sign_negative() && f != 0.0;
    let (digits, dp) = decimal_digits(f.abs(), Some(prec + 1));
    let mut out = String::new();
    fmt_e(neg, &digits, dp, prec, &mut out);
    out
}

/// Whether Go's `strconv.IsPrint` would print the character as is.
fn is_go_printable(c: char) -> bool {
    if c.is_control() {
        return false;
    }
    !matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E000}'..='\u{F8FF}'
    )
}

fn push_escaped(c: char, quote: char, out: &mut String) {
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if is_go_printable(c) => out.push(c),
        c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(c, '"', &mut out);
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune`.
pub(crate) fn go_quote_rune(c: char) -> String {
    let mut out = String::from("'");
    push_escaped(c, '\'', &mut out);
    out.push('\'');
    out
}

/// Encodes a value like Go's `json.Marshal`/`json.Encoder` in compact form (no trailing
/// newline). `escape_html` escapes `<`, `>` and `&` as `json.Marshal` does by default.
/// Object members are written in the map's own order: sorted (Go's order for maps) unless
/// serde_json keeps insertion order, in which case data decoded from the daemon keeps Go's
/// struct field order.
pub fn go_json(v: &Value, escape_html: bool) -> String {
    let mut out = String::new();
    write_json(v, escape_html, &mut out);
    out
}

fn write_json(v: &Value, escape_html: bool, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&json_number(n)),
        Value::String(s) => write_json_string(s, escape_html, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, escape_html, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, escape_html, out);
                out.push(':');
                write_json(item, escape_html, out);
            }
            out.push('}');
        }
    }
}

fn json_number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go: 'e' format, shortest, with "e-07" cleaned to "e-7".
        let neg = f < 0.0;
        let (digits, dp) = decimal_digits(abs, None);
        let mut s = String::new();
        fmt_e(neg, &digits, dp, digits.len().saturating_sub(1), &mut s);
        if let Some(idx) = s.find("e-0") {
            s.remove(idx + 2);
        }
        return s;
    }
    let (digits, dp) = decimal_digits(abs, None);
    let mut s = String::new();
    let frac = (digits.len() as i32 - dp).max(0) as usize;
    fmt_f(f < 0.0, &digits, dp, frac, &mut s);
    s
}

fn write_json_string(s: &str, escape_html: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if escape_html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sprint_matches_go_fmt() {
        assert_eq!(go_sprint(&json!("x")), "x");
        assert_eq!(go_sprint(&json!(42)), "42");
        assert_eq!(go_sprint(&json!(-7)), "-7");
        assert_eq!(go_sprint(&json!(true)), "true");
        assert_eq!(go_sprint(&json!(null)), "<nil>");
        assert_eq!(go_sprint(&json!(["a", "b", 3])), "[a b 3]");
        assert_eq!(go_sprint(&json!([])), "[]");
        assert_eq!(
            go_sprint(&json!({"b": 1, "a": {"c": null}, "d": ["x"]})),
            "map[a:map[c:<nil>] b:1 d:[x]]"
        );
        assert_eq!(go_sprint(&json!({})), "map[]");
    }

    #[test]
    fn floats_like_go_percent_v() {
        let g = |f: f64| go_float_g(f, None);
        assert_eq!(g(1.5), "1.5");
        assert_eq!(g(3.0), "3");
        assert_eq!(g(0.0), "0");
        assert_eq!(g(123456.0), "123456");
        assert_eq!(g(1_000_000.0), "1e+06");
        assert_eq!(g(1_234_567.0), "1.234567e+06");
        assert_eq!(g(0.0001), "0.0001");
        assert_eq!(g(0.00001), "1e-05");
        assert_eq!(g(-2.25), "-2.25");
        assert_eq!(g(1e21), "1e+21");
        assert_eq!(g(f64::INFINITY), "+Inf");
    }

    #[test]
    fn floats_like_go_percent_g_with_precision() {
        let g = |f: f64, p: usize| go_float_g(f, Some(p));
        assert_eq!(g(5.368709, 3), "5.37");
        assert_eq!(g(1.0, 3), "1");
        assert_eq!(g(120.0, 3), "120");
        assert_eq!(g(100.0, 3), "100");
        assert_eq!(g(999.5, 3), "1e+03");
        assert_eq!(g(999.999, 4), "1000");
        assert_eq!(g(0.0, 3), "0");
        assert_eq!(g(1.125, 3), "1.12");
        assert_eq!(g(1.23456, 4), "1.235");
        assert_eq!(g(0.000012345, 3), "1.23e-05");
    }

    #[test]
    fn e_and_f_formats() {
        assert_eq!(go_float_e(1234.5678, 2), "1.23e+03");
        assert_eq!(go_float_e(0.0, 1), "0.0e+00");
        assert_eq!(go_float_f(2.5, 2), "2.50");
    }

    #[test]
    fn quote_like_strconv() {
        assert_eq!(go_quote("sh -c 'echo hi'"), r#""sh -c 'echo hi'""#);
        assert_eq!(go_quote("a\"b\\c\n\t"), r#""a\"b\\c\n\t""#);
        assert_eq!(go_quote("\u{1}é\u{200b}"), r#""\x01é\u200b""#);
        assert_eq!(go_quote("…"), "\"…\"");
        assert_eq!(go_quote_rune('a'), "'a'");
        assert_eq!(go_quote_rune('\''), r"'\''");
    }

    #[test]
    fn json_like_go_encoder() {
        let v = json!({"b": [1, 2.5, null], "a": "<x & y>", "c": true});
        assert_eq!(
            go_json(&v, true),
            r#"{"a":"\u003cx \u0026 y\u003e","b":[1,2.5,null],"c":true}"#
        );
        assert_eq!(
            go_json(&v, false),
            r#"{"a":"<x & y>","b":[1,2.5,null],"c":true}"#
        );
        assert_eq!(
            go_json(&json!("a\u{2028}\u{1}\u{8}\"\\"), false),
            r#""a\u2028\u0001\b\"\\""#
        );
        assert_eq!(go_json(&json!(1e21), false), "1e+21");
        assert_eq!(go_json(&json!(1e-7), false), "1e-7");
        assert_eq!(go_json(&json!(3.0), false), "3");
        assert_eq!(go_json(&json!(1e20), false), "100000000000000000000");
        assert_eq!(go_json(&json!(0.000001), false), "0.000001");
    }

    #[test]
    fn type_names_are_gos() {
        assert_eq!(type_name(Some(&json!(1.5))), "float64");
        assert_eq!(type_name(Some(&json!(1))), "int");
        assert_eq!(type_name(Some(&json!([]))), "[]interface {}");
        assert_eq!(type_name(None), "<nil>");
    }
}
