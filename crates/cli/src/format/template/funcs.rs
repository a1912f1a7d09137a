//! The template functions: Go's builtins (`eq ne lt le gt ge not len index slice print printf
//! println html js urlquery`) and docker's additions (`json split join title lower upper pad truncate`), plus
//! the header variants docker swaps in when it renders a table header.
//!
//! `and` and `or` short-circuit, so the evaluator implements them itself.

use serde_json::Value;

use super::escape;
use super::exec::Val;
use super::printf::{sprint, sprintf, sprintln};
use super::value::{go_json, go_sprint, type_name};

/// Why a call failed; the evaluator turns it into a positioned error.
#[derive(Debug)]
pub(crate) enum CallError {
    /// Wrong number of arguments (Go reports it at the function name).
    Arity(String),
    /// An argument had the wrong type (Go reports it at the argument). `want` is the Go type
    /// of the parameter, for errors about literal arguments.
    Type {
        index: usize,
        want: &'static str,
        message: String,
    },
    /// The function itself failed: `error calling index: ...`.
    Call(String),
}

/// How the function is being evaluated.
pub(crate) struct CallCtx<'a> {
    /// Docker's `HeaderFunctions`: text functions return their input unchanged.
    pub(crate) header: bool,
    /// Whether `json` of the root value escapes HTML like `json.Marshal` (docker's formatter
    /// objects implement `MarshalJSON` with `json.Marshal`).
    pub(crate) escape_root_html: bool,
    pub(crate) root: &'a Value,
}

fn arity(name: &str, want: usize, got: usize) -> Result<(), CallError> {
    if want == got {
        Ok(())
    } else {
        Err(CallError::Arity(format!(
            "wrong number of args for {name}: want {want} got {got}"
        )))
    }
}

fn at_least(name: &str, want: usize, got: usize) -> Result<(), CallError> {
    if got >= want {
        Ok(())
    } else {
        Err(CallError::Arity(format!(
            "wrong number of args for {name}: want at least {want} got {got}"
        )))
    }
}

fn expect_str<'v>(args: &'v [Val<'_>], index: usize) -> Result<&'v str, CallError> {
    match args.get(index).and_then(Val::get) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(CallError::Type {
            index,
            want: "string",
            message: "invalid value; expected string".to_string(),
        }),
        Some(v) => Err(CallError::Type {
            index,
            want: "string",
            message: format!(
                "wrong type for value; expected string; got {}",
                type_name(Some(v))
            ),
        }),
    }
}

fn expect_int(args: &[Val<'_>], index: usize) -> Result<i64, CallError> {
    let v = args.get(index).and_then(Val::get);
    let as_int = match v {
        Some(Value::Number(n)) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        _ => None,
    };
    as_int.ok_or_else(|| CallError::Type {
        index,
        want: "int",
        message: match v {
            None | Some(Value::Null) => "invalid value; expected int".to_string(),
            Some(v) => format!(
                "wrong type for value; expected int; got {}",
                type_name(Some(v))
            ),
        },
    })
}

/// Go's truth: false, 0, nil and empty strings, arrays and maps are false.
pub(crate) fn truth(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

fn owned(v: Value) -> Val<'static> {
    Val::Owned(v)
}

/// Calls a function other than `and`/`or` with evaluated arguments.
pub(crate) fn call<'a>(
    name: &str,
    args: &[Val<'a>],
    ctx: &CallCtx<'_>,
) -> Result<Val<'a>, CallError> {
    let n = args.len();
    let values: Vec<Option<&Value>> = args.iter().map(Val::get).collect();
    if ctx.header {
        match name {
            "json" | "title" | "lower" | "upper" => {
                arity(name, 1, n)?;
                return Ok(owned(Value::String(expect_str(args, 0)?.to_string())));
            }
            "split" | "join" => {
                arity(name, 2, n)?;
                expect_str(args, 1)?;
                return Ok(owned(Value::String(expect_str(args, 0)?.to_string())));
            }
            "truncate" => {
                arity(name, 2, n)?;
                expect_int(args, 1)?;
                return Ok(owned(Value::String(expect_str(args, 0)?.to_string())));
            }
            _ => {}
        }
    }
    let result = match name {
        "not" => {
            arity(name, 1, n)?;
            Value::Bool(!truth(values[0]))
        }
        "eq" => {
            at_least(name, 1, n)?;
            Value::Bool(eq(values[0], &values[1..]).map_err(|e| call_err(name, e))?)
        }
        "ne" => {
            arity(name, 2, n)?;
            Value::Bool(!eq(values[0], &values[1..]).map_err(|e| call_err(name, e))?)
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(name, 2, n)?;
            let (a, b) = (values[0], values[1]);
            let less = |x, y| less_than(x, y).map_err(|e| call_err(name, e));
            let equal = |x, y: Option<&Value>| eq(x, &[y]).map_err(|e| call_err(name, e));
            Value::Bool(match name {
                "lt" => less(a, b)?,
                "le" => less(a, b)? || equal(a, b)?,
                "gt" => !less(a, b)? && !equal(a, b)?,
                _ => !less(a, b)?,
            })
        }
        "len" => {
            arity(name, 1, n)?;
            let len = match values[0] {
                Some(Value::String(s)) => s.len(),
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                None | Some(Value::Null) => {
                    return Err(call_err(name, "len of nil pointer".to_string()))
                }
                Some(v) => {
                    return Err(call_err(
                        name,
                        format!("len of type {}", type_name(Some(v))),
                    ))
                }
            };
            Value::from(len)
        }
        "index" => {
            at_least(name, 1, n)?;
            return index(&args[0], &values[1..]).map_err(|e| call_err(name, e));
        }
        "html" | "js" | "urlquery" => {
            let text = match values.as_slice() {
                [Some(Value::String(s))] => s.clone(),
                _ => sprint(&values),
            };
            Value::String(match name {
                "html" => escape::html(&text),
                "js" => escape::js(&text),
                _ => escape::query(&text),
            })
        }
        "slice" => {
            at_least(name, 1, n)?;
            return escape::slice(&args[0], &values[1..]).map_err(|e| call_err(name, e));
        }
        "print" => Value::String(sprint(&values)),
        "println" => Value::String(sprintln(&values)),
        "printf" => {
            at_least(name, 1, n)?;
            let format = expect_str(args, 0)?;
            Value::String(sprintf(format, &values[1..]))
        }
        "json" => {
            arity(name, 1, n)?;
            let is_row = ctx.escape_root_html
                && matches!(&args[0], Val::Ref(v) if std::ptr::eq(*v, ctx.root));
            match values[0] {
                Some(Value::Object(map)) if is_row => {
                    // A formatter row: its `@` method tables are not part of its JSON.
                    let visible: serde_json::Map<String, Value> = map
                        .iter()
                        .filter(|(k, _)| !k.starts_with('@'))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    Value::String(go_json(&Value::Object(visible), true))
                }
                v => Value::String(go_json(v.unwrap_or(&Value::Null), is_row)),
            }
        }
        "split" => {
            arity(name, 2, n)?;
            let (s, sep) = (expect_str(args, 0)?, expect_str(args, 1)?);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep).map(|p| Value::String(p.to_string())).collect()
            };
            Value::Array(parts)
        }
        "join" => {
            arity(name, 2, n)?;
            let sep = expect_str(args, 1)?;
            let items: Vec<String> = match values[0] {
                Some(Value::Array(items)) => items.iter().map(go_sprint).collect(),
                None | Some(Value::Null) => Vec::new(),
                Some(v) => {
                    return Err(CallError::Type {
                        index: 0,
                        want: "[]string",
                        message: format!(
                            "wrong type for value; expected []string; got {}",
                            type_name(Some(v))
                        ),
                    })
                }
            };
            Value::String(items.join(sep))
        }
        "title" => {
            arity(name, 1, n)?;
            Value::String(title(expect_str(args, 0)?))
        }
        "lower" => {
            arity(name, 1, n)?;
            Value::String(map_case(expect_str(args, 0)?, false))
        }
        "upper" => {
            arity(name, 1, n)?;
            Value::String(map_case(expect_str(args, 0)?, true))
        }
        "pad" => {
            arity(name, 3, n)?;
            let s = expect_str(args, 0)?;
            let (pre, post) = (expect_int(args, 1)?, expect_int(args, 2)?);
            if s.is_empty() {
                Value::String(String::new())
            } else {
                let spaces = |k: i64| " ".repeat(usize::try_from(k).unwrap_or(0));
                Value::String(format!("{}{s}{}", spaces(pre), spaces(post)))
            }
        }
        "truncate" => {
            arity(name, 2, n)?;
            let s = expect_str(args, 0)?;
            let len = expect_int(args, 1)?;
            let len = usize::try_from(len).unwrap_or(0);
            if s.len() < len {
                Value::String(s.to_string())
            } else {
                let mut end = len;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                Value::String(s[..end].to_string())
            }
        }
        other => {
            return Err(CallError::Call(format!(
                "{} is not a defined function",
                super::value::go_quote(other)
            )))
        }
    };
    Ok(owned(result))
}

fn call_err(name: &str, message: String) -> CallError {
    CallError::Call(format!("error calling {name}: {message}"))
}

#[derive(PartialEq)]
enum Kind {
    Bool,
    Number,
    String,
    Nil,
    Complex,
}

fn kind(v: Option<&Value>) -> Kind {
    match v {
        None | Some(Value::Null) => Kind::Nil,
        Some(Value::Bool(_)) => Kind::Bool,
        Some(Value::Number(_)) => Kind::Number,
        Some(Value::String(_)) => Kind::String,
        Some(_) => Kind::Complex,
    }
}

fn num_eq(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x == y,
        _ => match (a.as_u64(), b.as_u64()) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_f64() == b.as_f64(),
        },
    }
}

/// Go's `eq`: true if the first argument equals any of the others.
fn eq(a: Option<&Value>, others: &[Option<&Value>]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".to_string());
    }
    let ka = kind(a);
    for b in others {
        let kb = kind(*b);
        if ka == Kind::Complex || kb == Kind::Complex {
            if ka == Kind::Nil || kb == Kind::Nil {
                continue;
            }
            return Err(format!(
                "non-comparable types {}: {}",
                type_name(a),
                type_name(*b)
            ));
        }
        if ka != kb {
            if ka == Kind::Nil || kb == Kind::Nil {
                continue;
            }
            return Err("incompatible types for comparison".to_string());
        }
        let equal = match (a, b) {
            (Some(Value::Number(x)), Some(Value::Number(y))) => num_eq(x, y),
            (Some(Value::String(x)), Some(Value::String(y))) => x == y,
            (Some(Value::Bool(x)), Some(Value::Bool(y))) => x == y,
            _ => true, // both nil
        };
        if equal {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `lt`.
fn less_than(a: Option<&Value>, b: Option<&Value>) -> Result<bool, String> {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return Ok(x < y);
            }
            Ok(x.as_f64().unwrap_or(0.0) < y.as_f64().unwrap_or(0.0))
        }
        (Some(Value::String(x)), Some(Value::String(y))) => Ok(x < y),
        _ if kind(a) == kind(b) || kind(a) == Kind::Complex || kind(b) == Kind::Complex => {
            Err("invalid type for comparison".to_string())
        }
        _ if kind(a) == Kind::Bool || kind(b) == Kind::Bool => {
            Err("invalid type for comparison".to_string())
        }
        _ => Err("incompatible types for comparison".to_string()),
    }
}

/// Go's `index item i j k`.
fn index<'a>(item: &Val<'a>, keys: &[Option<&Value>]) -> Result<Val<'a>, String> {
    let mut cur = item.clone();
    for key in keys {
        let next = match cur.get() {
            None | Some(Value::Null) => return Err("index of untyped nil".to_string()),
            Some(Value::Array(items)) => {
                let i = match key {
                    Some(Value::Number(n)) => n.as_i64(),
                    _ => None,
                }
                .ok_or_else(|| format!("cannot index slice/array with type {}", type_name(*key)))?;
                if i < 0 || i as usize > items.len() {
                    return Err(format!("index out of range: {i}"));
                }
                if i as usize == items.len() {
                    return Err("reflect: slice index out of range".to_string());
                }
                cur.child(|v| v.as_array().and_then(|a| a.get(i as usize)))
            }
            Some(Value::Object(map)) => match key {
                Some(Value::String(k)) => {
                    if map.contains_key(k.as_str()) {
                        cur.child(|v| v.get(k.as_str()))
                    } else if map.values().all(Value::is_string) {
                        // Most maps in docker's data are map[string]string (labels, options),
                        // whose missing entries are "" in Go.
                        Val::Owned(Value::String(String::new()))
                    } else {
                        Val::Missing
                    }
                }
                _ => {
                    return Err(format!(
                        "value has type {}; should be string",
                        type_name(*key)
                    ))
                }
            },
            Some(Value::String(s)) => {
                let i = match key {
                    Some(Value::Number(n)) => n.as_i64(),
                    _ => None,
                }
                .ok_or_else(|| format!("cannot index slice/array with type {}", type_name(*key)))?;
                match usize::try_from(i).ok().map(|i| (i, s.as_bytes().get(i))) {
                    Some((_, Some(b))) => Val::Owned(Value::from(*b)),
                    Some((i, None)) if i == s.len() => {
                        return Err("reflect: string index out of range".to_string())
                    }
                    _ => return Err(format!("index out of range: {i}")),
                }
            }
            Some(v) => return Err(format!("can't index item of type {}", type_name(Some(v)))),
        };
        cur = next;
    }
    Ok(cur)
}

/// Go's `strings.Title`.
fn title(s: &str) -> String {
    let is_separator = |c: char| {
        if c.is_ascii() {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if c.is_alphanumeric() {
            return false;
        }
        c.is_whitespace()
    };
    let mut prev = ' ';
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_separator(prev) {
            out.push_str(&map_case(&c.to_string(), true));
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

/// Go's `strings.ToUpper`/`ToLower`: per-character simple case mapping.
fn map_case(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mapped: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            match mapped.as_slice() {
                [one] => *one,
                _ if c == '\u{130}' && !upper => 'i',
                _ => c,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(name: &str, args: Vec<Value>) -> Result<String, String> {
        let root = json!({});
        let ctx = CallCtx {
            header: false,
            escape_root_html: false,
            root: &root,
        };
        let vals: Vec<Val> = args.into_iter().map(Val::Owned).collect();
        match call(name, &vals, &ctx) {
            Ok(v) => Ok(v
                .get()
                .map(go_sprint)
                .unwrap_or_else(|| "<no value>".into())),
            Err(CallError::Arity(m) | CallError::Call(m)) => Err(m),
            Err(CallError::Type { message, .. }) => Err(message),
        }
    }

    #[test]
    fn comparisons() {
        assert_eq!(
            run("eq", vec![json!("a"), json!("b"), json!("a")]),
            Ok("true".into())
        );
        assert_eq!(run("eq", vec![json!(1), json!(1.0)]), Ok("true".into()));
        assert_eq!(
            run("ne", vec![json!(true), json!(false)]),
            Ok("true".into())
        );
        assert_eq!(run("eq", vec![json!(null), json!("a")]), Ok("false".into()));
        assert_eq!(
            run("eq", vec![json!(1), json!("1")]),
            Err("error calling eq: incompatible types for comparison".into())
        );
        assert_eq!(
            run("eq", vec![json!(1)]),
            Err("error calling eq: missing argument for comparison".into())
        );
        assert_eq!(run("lt", vec![json!(1), json!(2)]), Ok("true".into()));
        assert_eq!(run("le", vec![json!(2), json!(2)]), Ok("true".into()));
        assert_eq!(run("gt", vec![json!("b"), json!("a")]), Ok("true".into()));
        assert_eq!(run("ge", vec![json!(1), json!(2)]), Ok("false".into()));
        assert_eq!(
            run("lt", vec![json!(true), json!(false)]),
            Err("error calling lt: invalid type for comparison".into())
        );
        assert_eq!(run("not", vec![json!("")]), Ok("true".into()));
    }

    #[test]
    fn strings() {
        assert_eq!(run("lower", vec![json!("ÀBC")]), Ok("àbc".into()));
        assert_eq!(run("upper", vec![json!("straße")]), Ok("STRAßE".into()));
        assert_eq!(
            run("title", vec![json!("hello wide-world_x")]),
            Ok("Hello Wide-World_x".into())
        );
        assert_eq!(
            run("split", vec![json!("a,b,,c"), json!(",")]),
            Ok("[a b  c]".into())
        );
        assert_eq!(
            run("split", vec![json!("ab"), json!("")]),
            Ok("[a b]".into())
        );
        assert_eq!(
            run("join", vec![json!(["a", "b"]), json!(", ")]),
            Ok("a, b".into())
        );
        assert_eq!(
            run("pad", vec![json!("x"), json!(2), json!(1)]),
            Ok("  x ".into())
        );
        assert_eq!(
            run("pad", vec![json!(""), json!(2), json!(1)]),
            Ok("".into())
        );
        assert_eq!(
            run("truncate", vec![json!("abcdef"), json!(3)]),
            Ok("abc".into())
        );
        assert_eq!(
            run("truncate", vec![json!("ab"), json!(3)]),
            Ok("ab".into())
        );
        assert_eq!(
            run("truncate", vec![json!("héllo"), json!(2)]),
            Ok("h".into())
        );
        assert_eq!(
            run("lower", vec![json!(3)]),
            Err("wrong type for value; expected string; got int".into())
        );
        assert_eq!(
            run("lower", vec![]),
            Err("wrong number of args for lower: want 1 got 0".into())
        );
    }

    #[test]
    fn len_and_index() {
        assert_eq!(run("len", vec![json!("héllo")]), Ok("6".into()));
        assert_eq!(run("len", vec![json!([1, 2])]), Ok("2".into()));
        assert_eq!(run("len", vec![json!({"a": 1})]), Ok("1".into()));
        assert_eq!(
            run("index", vec![json!({"a": [1, 2]}), json!("a"), json!(1)]),
            Ok("2".into())
        );
        assert_eq!(
            run("index", vec![json!({"a": 1}), json!("b")]),
            Ok("<no value>".into())
        );
        assert_eq!(
            run("index", vec![json!({"a": "x"}), json!("b")]),
            Ok("".into())
        );
        assert_eq!(run("index", vec![json!({}), json!("b")]), Ok("".into()));
        assert_eq!(run("index", vec![json!("AB"), json!(1)]), Ok("66".into()));
        assert_eq!(
            run("index", vec![json!(""), json!(0)]),
            Err("error calling index: reflect: string index out of range".into())
        );
        assert_eq!(
            run("index", vec![json!("ab"), json!(5)]),
            Err("error calling index: index out of range: 5".into())
        );
        assert_eq!(
            run("index", vec![json!(["a"]), json!(1)]),
            Err("error calling index: reflect: slice index out of range".into())
        );
        assert_eq!(
            run("index", vec![json!([1]), json!(5)]),
            Err("error calling index: index out of range: 5".into())
        );
        assert_eq!(
            run("index", vec![json!(null), json!(5)]),
            Err("error calling index: index of untyped nil".into())
        );
        assert_eq!(
            run("len", vec![json!(3)]),
            Err("error calling len: len of type int".into())
        );
    }

    #[test]
    fn json_and_print() {
        assert_eq!(
            run("json", vec![json!({"b": "<>", "a": [1]})]),
            Ok(r#"{"a":[1],"b":"<>"}"#.into())
        );
        assert_eq!(run("json", vec![json!(null)]), Ok("null".into()));
        assert_eq!(
            run("printf", vec![json!("%s=%d"), json!("a"), json!(1)]),
            Ok("a=1".into())
        );
        assert_eq!(run("print", vec![json!(1), json!(2)]), Ok("1 2".into()));
        assert_eq!(run("println", vec![json!("a")]), Ok("a\n".into()));
    }

    #[test]
    fn header_functions_return_their_input() {
        let root = json!({});
        let ctx = CallCtx {
            header: true,
            escape_root_html: false,
            root: &root,
        };
        let args = vec![Val::Owned(json!("NAMES")), Val::Owned(json!(","))];
        let out = call("join", &args, &ctx)
            .ok()
            .and_then(|v| v.get().cloned());
        assert_eq!(out, Some(json!("NAMES")));
        let args = vec![Val::Owned(json!("ID"))];
        let out = call("lower", &args, &ctx)
            .ok()
            .and_then(|v| v.get().cloned());
        assert_eq!(out, Some(json!("ID")));
    }
}
