//! Go's `fmt.Sprintf`, `fmt.Sprint` and `fmt.Sprintln` over JSON values.
//!
//! Supports the verbs docker formats use (`%v %s %d %q`) plus `%x %X %o %O %b %U %c %f %e %g
//! %t %%`, the
//! flags `- + 0 space #`, width and precision (also `*`), and Go's error spellings for bad
//! verbs (`%!d(string=x)`), missing operands (`%!s(MISSING)`) and extra operands
//! (`%!(EXTRA int=1)`).

use serde_json::Value;

use super::value::{
    go_float_e, go_float_f, go_float_g, go_number, go_quote, go_quote_rune, go_sprint, type_name,
};

/// Go's `fmt.Sprint`: operands formatted with `%v`, a space between two operands when neither
/// is a string.
pub(crate) fn sprint(args: &[Option<&Value>]) -> String {
    let mut out = String::new();
    let mut prev_string = true;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Some(Value::String(_)));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        out.push_str(&v_of(*a));
        prev_string = is_string;
    }
    out
}

/// Go's `fmt.Sprintln`: operands separated by spaces, then a newline.
pub(crate) fn sprintln(args: &[Option<&Value>]) -> String {
    let parts: Vec<String> = args.iter().map(|a| v_of(*a)).collect();
    let mut out = parts.join(" ");
    out.push('\n');
    out
}

fn v_of(v: Option<&Value>) -> String {
    match v {
        None => "<nil>".to_string(),
        Some(v) => go_sprint(v),
    }
}

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Option<&Value>]) -> String {
    let mut out = String::new();
    let mut next_arg = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = read_num(&mut chars, args, &mut next_arg);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(read_num(&mut chars, args, &mut next_arg).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        if next_arg >= args.len() {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        }
        let arg = args[next_arg];
        next_arg += 1;
        out.push_str(&format_one(verb, &spec, arg));
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next_arg..]
            .iter()
            .map(|a| match a {
                None | Some(Value::Null) => "<nil>".to_string(),
                Some(v) => format!("{}={}", type_name(Some(v)), go_sprint(v)),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn read_num(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    args: &[Option<&Value>],
    next_arg: &mut usize,
) -> Option<usize> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let v = args.get(*next_arg).copied().flatten();
        *next_arg += 1;
        return v.and_then(Value::as_u64).map(|n| n as usize);
    }
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
        chars.next();
    }
    n
}

fn bad_verb(verb: char, v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => format!("%!{verb}(<nil>)"),
        Some(v) => format!("%!{verb}({}={})", type_name(Some(v)), go_sprint(v)),
    }
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let Some(width) = spec.width else { return s };
    let len = s.chars().count();
    if len >= width {
        return s;
    }
    let fill = width - len;
    if spec.minus {
        return format!("{s}{}", " ".repeat(fill));
    }
    if spec.zero && numeric {
        let (sign, digits) = match s.strip_prefix(['-', '+', ' ']) {
            Some(rest) => (&s[..1], rest),
            None => ("", s.as_str()),
        };
        return format!("{sign}{}{digits}", "0".repeat(fill));
    }
    format!("{}{s}", " ".repeat(fill))
}

fn signed(s: String, negative: bool, spec: &Spec) -> String {
    if negative {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

/// Applies a verb element-wise to arrays and maps, like Go does for slices and maps.
fn compound(verb: char, spec: &Spec, v: &Value) -> Option<String> {
    match v {
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| {
                    format_one(
                        verb,
                        &Spec {
                            width: None,
                            ..*spec
                        },
                        Some(i),
                    )
                })
                .collect();
            Some(format!("[{}]", parts.join(" ")))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = entries
                .into_iter()
                .map(|(k, i)| {
                    let inner = Spec {
                        width: None,
                        ..*spec
                    };
                    let key = Value::String(k.clone());
                    format!(
                        "{}:{}",
                        format_one(verb, &inner, Some(&key)),
                        format_one(verb, &inner, Some(i))
                    )
                })
                .collect();
            Some(format!("map[{}]", parts.join(" ")))
        }
        _ => None,
    }
}

fn format_one(verb: char, spec: &Spec, arg: Option<&Value>) -> String {
    if let Some(v) = arg {
        if verb != 'v' {
            if let Some(s) = compound(verb, spec, v) {
                return pad(s, spec, false);
            }
        }
    }
    match (verb, arg) {
        ('v', None | Some(Value::Null)) => pad("<nil>".to_string(), spec, false),
        ('v', Some(Value::Number(n))) => match int_of(n) {
            Some(i) => format_int('d', spec, i, arg),
            None => pad(go_number(n), spec, true),
        },
        ('v', Some(Value::String(s))) if spec.sharp => pad(go_quote(s), spec, false),
        ('v', Some(v)) => pad(go_sprint(v), spec, false),
        ('s', Some(Value::String(s))) => {
            let s = match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            };
            pad(s, spec, false)
        }
        ('q', Some(Value::String(s))) => pad(go_quote(s), spec, false),
        ('q', Some(Value::Number(n))) => match n.as_i64().and_then(|i| u32::try_from(i).ok()) {
            Some(code) => pad(
                go_quote_rune(char::from_u32(code).unwrap_or('\u{FFFD}')),
                spec,
                false,
            ),
            None => bad_verb(verb, arg),
        },
        ('t', Some(Value::Bool(b))) => pad(b.to_string(), spec, false),
        ('d' | 'x' | 'X' | 'o' | 'O' | 'b' | 'U' | 'c', Some(Value::Number(n))) => {
            match int_of(n) {
                Some(i) => format_int(verb, spec, i, arg),
                None => bad_verb(verb, arg),
            }
        }
        ('x' | 'X', Some(Value::String(s))) => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            let hex = if verb == 'X' { hex.to_uppercase() } else { hex };
            pad(hex, spec, false)
        }
        ('f' | 'F' | 'e' | 'E' | 'g' | 'G', Some(Value::Number(n))) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            let body = match verb {
                'f' | 'F' => go_float_f(f.abs(), spec.prec.unwrap_or(6)),
                'e' | 'E' => go_float_e(f.abs(), spec.prec.unwrap_or(6)),
                _ => go_float_g(f.abs(), spec.prec),
            };
            let body = if verb.is_ascii_uppercase() {
                body.to_uppercase()
            } else {
                body
            };
            let neg = f.is_sign_negative() && f != 0.0;
            let body = if neg { format!("-{body}") } else { body };
            pad(signed(body, neg, spec), spec, true)
        }
        _ => bad_verb(verb, arg),
    }
}

fn int_of(n: &serde_json::Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn format_int(verb: char, spec: &Spec, i: i128, arg: Option<&Value>) -> String {
    let neg = i < 0;
    let abs = i.unsigned_abs();
    let body = match verb {
        'd' => abs.to_string(),
        'x' => format!("{abs:x}"),
        'X' => format!("{abs:X}"),
        'o' => format!("{abs:o}"),
        'O' => format!("0o{abs:o}"),
        'b' => format!("{abs:b}"),
        'U' => return pad(format!("U+{abs:04X}"), spec, false),
        'c' => match u32::try_from(i).ok().and_then(char::from_u32) {
            Some(c) => return pad(c.to_string(), spec, false),
            None => return bad_verb(verb, arg),
        },
        _ => return bad_verb(verb, arg),
    };
    let body = match spec.prec {
        Some(p) if body.len() < p => format!("{}{body}", "0".repeat(p - body.len())),
        _ => body,
    };
    let body = if spec.sharp && matches!(verb, 'x' | 'X') {
        format!("0{}{body}", if verb == 'X' { 'X' } else { 'x' })
    } else {
        body
    };
    let body = if neg { format!("-{body}") } else { body };
    pad(signed(body, neg, spec), spec, spec.prec.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(format: &str, args: &[Value]) -> String {
        let refs: Vec<Option<&Value>> = args.iter().map(Some).collect();
        sprintf(format, &refs)
    }

    #[test]
    fn common_verbs() {
        assert_eq!(f("%s-%d", &[json!("a"), json!(5)]), "a-5");
        assert_eq!(
            f("%v %v %v", &[json!(1.5), json!(true), json!(["x", 2])]),
            "1.5 true [x 2]"
        );
        assert_eq!(f("%q", &[json!("hi \"x\"")]), r#""hi \"x\"""#);
        assert_eq!(f("%q", &[json!(["a", "b"])]), r#"["a" "b"]"#);
        assert_eq!(f("%s", &[json!(["a", "b"])]), "[a b]");
        assert_eq!(f("100%%", &[]), "100%");
        assert_eq!(f("%t", &[json!(false)]), "false");
        assert_eq!(f("%c", &[json!(65)]), "A");
        assert_eq!(f("%x %X", &[json!(255), json!("hi")]), "ff 6869");
        assert_eq!(
            f("%o %b %U %#x", &[json!(8), json!(5), json!(65), json!(255)]),
            "10 101 U+0041 0xff"
        );
    }

    #[test]
    fn widths_and_flags() {
        assert_eq!(f("[%-6s]", &[json!("ab")]), "[ab    ]");
        assert_eq!(f("[%6s]", &[json!("ab")]), "[    ab]");
        assert_eq!(f("[%.2s]", &[json!("abcdef")]), "[ab]");
        assert_eq!(f("[%05d]", &[json!(-42)]), "[-0042]");
        assert_eq!(f("[%+d]", &[json!(7)]), "[+7]");
        assert_eq!(f("[%*d]", &[json!(4), json!(7)]), "[   7]");
        assert_eq!(f("%.2f", &[json!(1.23456)]), "1.23");
        assert_eq!(f("%8.3f|", &[json!(-2.5)]), "  -2.500|");
        assert_eq!(f("%e", &[json!(1234.5)]), "1.234500e+03");
        assert_eq!(f("%g", &[json!(0.5)]), "0.5");
    }

    #[test]
    fn go_error_spellings() {
        assert_eq!(f("%d", &[json!("x")]), "%!d(string=x)");
        assert_eq!(f("%s", &[json!(5)]), "%!s(int=5)");
        assert_eq!(f("%s %s", &[json!("a")]), "a %!s(MISSING)");
        assert_eq!(
            f("%s", &[json!("a"), json!(1), json!("b")]),
            "a%!(EXTRA int=1, string=b)"
        );
        assert_eq!(f("%s", &[json!(null)]), "%!s(<nil>)");
        assert_eq!(f("%z", &[json!(1)]), "%!z(int=1)");
        assert_eq!(f("%f", &[json!(1)]), "%!f(int=1)");
    }

    #[test]
    fn sprint_and_sprintln() {
        let (a, b, c) = (json!("a"), json!(1), json!(2));
        assert_eq!(sprint(&[Some(&a), Some(&b), Some(&c), Some(&a)]), "a1 2a");
        assert_eq!(sprintln(&[Some(&a), Some(&b), None]), "a 1 <nil>\n");
    }
}
