//! Evaluator: walks a parsed template over JSON data, with Go's `text/template` semantics.
//!
//! Field access on a map that lacks the key yields "no value" (printed `<no value>`), as for Go
//! maps; fields of a missing or null value are missing too; fields of strings, numbers and
//! arrays are errors (`can't evaluate field X in type string`). Variables are scoped to the
//! enclosing `if`/`with`/`range`; `range` iterates arrays, maps (sorted keys) and integers and
//! honours `break`/`continue`; `and`/`or` short-circuit and return the deciding operand.
//!
//! One extension to Go's map semantics lets formatter objects expose one-argument methods such
//! as docker's `{{.Label "com.example.key"}}`: a field `Name` called with an argument, where the
//! object has an object under `Name` or `@Name`, indexes that object by the argument (an absent
//! key gives `""`, like docker's `Label`). `@` keys are hidden from `{{json .}}` of a formatter
//! row. In header mode `.Label "a.b-c"` returns `c`'s header form (`SubHeaderContext.Label`).

use serde_json::Value;

use super::funcs::{call, truth, CallCtx, CallError};
use super::parse::{Arg, ArgKind, Branch, Cmd, Node, Num, Pipe, Pos};
use super::value::{go_sprint, type_name};
use super::{Options, TemplateError};

/// A value during evaluation: borrowed from the data, computed, or absent ("no value").
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Missing,
    Ref(&'a Value),
    Owned(Value),
}

impl<'a> Val<'a> {
    pub(crate) fn get(&self) -> Option<&Value> {
        match self {
            Val::Missing => None,
            Val::Ref(v) => Some(v),
            Val::Owned(v) => Some(v),
        }
    }

    /// A child of this value, borrowed when this value is borrowed.
    pub(crate) fn child(&self, f: impl Fn(&Value) -> Option<&Value>) -> Val<'a> {
        match self {
            Val::Missing => Val::Missing,
            Val::Ref(v) => f(v).map_or(Val::Missing, Val::Ref),
            Val::Owned(v) => f(v).map_or(Val::Missing, |c| Val::Owned(c.clone())),
        }
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Exec<'a, 's> {
    pub(crate) src: &'s str,
    pub(crate) root: &'a Value,
    pub(crate) opts: &'s Options,
    pub(crate) vars: Vec<(String, Val<'a>)>,
    pub(crate) out: String,
}

type R<T> = Result<T, TemplateError>;

impl<'a> Exec<'a, '_> {
    pub(crate) fn run(&mut self, nodes: &[Node]) -> R<()> {
        let dot = Val::Ref(self.root);
        self.vars.push(("$".to_string(), dot.clone()));
        self.walk(&dot, nodes).map(|_| ())
    }

    fn error(&self, pos: Pos, context: &str, message: impl Into<String>) -> TemplateError {
        let before = self.src.get(..pos.offset).unwrap_or("");
        let col = match before.rfind('\n') {
            Some(nl) => pos.offset - nl - 1,
            None => pos.offset,
        };
        TemplateError::Exec {
            line: pos.line,
            col,
            context: context.to_string(),
            message: message.into(),
        }
    }

    fn walk(&mut self, dot: &Val<'a>, nodes: &[Node]) -> R<Flow> {
        for node in nodes {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(pipe) => {
                    let v = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        match v.get() {
                            None => self.out.push_str("<no value>"),
                            // Null fields of formatter rows are Go nil pointers.
                            Some(Value::Null) if self.opts.root_type.is_some() => {
                                self.out.push_str("<nil>")
                            }
                            Some(Value::Null) => self.out.push_str("<no value>"),
                            Some(v) => {
                                let s = go_sprint(v);
                                self.out.push_str(&s);
                            }
                        }
                    }
                }
                Node::If(b) | Node::With(b) => {
                    let is_with = matches!(node, Node::With(_));
                    let mark = self.vars.len();
                    let flow = self.walk_if_with(dot, b, is_with);
                    self.vars.truncate(mark);
                    match flow? {
                        Flow::Normal => {}
                        other => return Ok(other),
                    }
                }
                Node::Range(b) => {
                    let mark = self.vars.len();
                    let res = self.walk_range(dot, b);
                    self.vars.truncate(mark);
                    res?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_if_with(&mut self, dot: &Val<'a>, b: &Branch, is_with: bool) -> R<Flow> {
        let val = self.eval_pipeline(dot, &b.pipe)?;
        if truth(val.get()) {
            let inner = if is_with { val } else { dot.clone() };
            self.walk(&inner, &b.list)
        } else if let Some(else_list) = &b.else_list {
            self.walk(dot, else_list)
        } else {
            Ok(Flow::Normal)
        }
    }

    fn walk_range(&mut self, dot: &Val<'a>, b: &Branch) -> R<()> {
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let pos = b
            .pipe
            .cmds
            .first()
            .map_or(Pos { offset: 0, line: 1 }, |c| c.pos);
        let src = b.pipe.cmds.first().map_or("", |c| c.src.as_str());
        let items: Vec<(Val<'a>, Val<'a>)> = match val.get() {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => (0..a.len())
                .map(|i| {
                    let elem = val.child(|v| v.as_array().and_then(|a| a.get(i)));
                    (Val::Owned(Value::from(i)), elem)
                })
                .collect(),
            Some(v @ Value::Object(_))
                if self.opts.root_type.is_some() && std::ptr::eq(v, self.root) =>
            {
                // A formatter row is a Go struct, which range cannot iterate.
                return Err(self.error(
                    pos,
                    src,
                    format!("range can't iterate over {}", go_sprint(v)),
                ));
            }
            Some(Value::Object(o)) => sorted_keys(o)
                .into_iter()
                .map(|k| {
                    let elem = val.child(|v| v.get(k.as_str()));
                    (Val::Owned(Value::String(k.clone())), elem)
                })
                .collect(),
            Some(Value::Number(n)) if n.as_i64().is_some() => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.error(
                        pos,
                        src,
                        format!("can't use {src} to iterate over more than one variable"),
                    ));
                }
                let count = n.as_i64().unwrap_or(0).max(0);
                (0..count)
                    .map(|i| (Val::Owned(Value::from(i)), Val::Owned(Value::from(i))))
                    .collect()
            }
            Some(v) => {
                return Err(self.error(
                    pos,
                    src,
                    format!("range can't iterate over {}", go_sprint(v)),
                ))
            }
        };
        if items.is_empty() {
            if let Some(else_list) = &b.else_list {
                self.walk(dot, else_list)?;
            }
            return Ok(());
        }
        let top = self.vars.len();
        for (index, elem) in items {
            match b.pipe.decl.len() {
                0 => {}
                1 => self.set_var_at(top, &b.pipe, 0, elem.clone()),
                _ => {
                    self.set_var_at(top, &b.pipe, 0, index);
                    self.set_var_at(top, &b.pipe, 1, elem.clone());
                }
            }
            let mark = self.vars.len();
            let flow = self.walk(&elem, &b.list);
            self.vars.truncate(mark);
            match flow? {
                Flow::Break => break,
                Flow::Normal | Flow::Continue => {}
            }
        }
        Ok(())
    }

    /// Sets the `i`th declared variable of a range pipeline for one iteration.
    fn set_var_at(&mut self, top: usize, pipe: &Pipe, i: usize, v: Val<'a>) {
        if pipe.is_assign {
            self.set_var(&pipe.decl[i], v);
        } else {
            let slot = top - pipe.decl.len() + i;
            if let Some(entry) = self.vars.get_mut(slot) {
                entry.1 = v;
            }
        }
    }

    fn set_var(&mut self, name: &str, v: Val<'a>) {
        if let Some(entry) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            entry.1 = v;
        }
    }

    fn lookup_var(&self, name: &str) -> Val<'a> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or(Val::Missing, |(_, v)| v.clone())
    }

    fn eval_pipeline(&mut self, dot: &Val<'a>, pipe: &Pipe) -> R<Val<'a>> {
        let mut value: Option<Val<'a>> = None;
        for cmd in &pipe.cmds {
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Val::Missing);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone());
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &Cmd, final_: &Option<Val<'a>>) -> R<()> {
        if cmd.args.len() > 1 || final_.is_some() {
            let first = &cmd.args[0];
            return Err(self.error(
                first.pos,
                &first.src,
                format!("can't give argument to non-function {}", first.src),
            ));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Val<'a>, cmd: &Cmd, final_: Option<Val<'a>>) -> R<Val<'a>> {
        let first = &cmd.args[0];
        let rest = &cmd.args[1..];
        match &first.kind {
            ArgKind::Field(names) => self.eval_fields(dot, dot.clone(), names, first, rest, final_),
            ArgKind::Chain(term, names) => {
                if matches!(term.kind, ArgKind::Nil) {
                    return Err(self.error(
                        first.pos,
                        &first.src,
                        format!("indirection through explicit nil in {}", first.src),
                    ));
                }
                let base = self.eval_arg(dot, term)?;
                self.eval_fields(dot, base, names, first, rest, final_)
            }
            ArgKind::Ident(name) => self.eval_function(dot, name, first, cmd, rest, final_),
            ArgKind::Pipe(p) => {
                self.not_a_function(cmd, &final_)?;
                self.eval_pipeline(dot, p)
            }
            ArgKind::Variable(name, fields) => {
                let v = self.lookup_var(name);
                if fields.is_empty() {
                    self.not_a_function(cmd, &final_)?;
                    return Ok(v);
                }
                self.eval_fields(dot, v, fields, first, rest, final_)
            }
            ArgKind::Nil => Err(self.error(first.pos, &first.src, "nil is not a command")),
            _ => {
                self.not_a_function(cmd, &final_)?;
                self.eval_arg(dot, first)
            }
        }
    }

    fn eval_fields(
        &mut self,
        dot: &Val<'a>,
        mut receiver: Val<'a>,
        names: &[String],
        node: &Arg,
        args: &[Arg],
        final_: Option<Val<'a>>,
    ) -> R<Val<'a>> {
        let Some((last, init)) = names.split_last() else {
            return Ok(receiver);
        };
        for name in init {
            receiver = self.eval_field(dot, receiver, name, node, &[], None)?;
        }
        self.eval_field(dot, receiver, last, node, args, final_)
    }

    fn eval_field(
        &mut self,
        dot: &Val<'a>,
        receiver: Val<'a>,
        name: &str,
        node: &Arg,
        args: &[Arg],
        final_: Option<Val<'a>>,
    ) -> R<Val<'a>> {
        let has_args = !args.is_empty() || final_.is_some();
        match receiver.get() {
            None | Some(Value::Null) => Ok(Val::Missing),
            Some(Value::Object(map)) => {
                let hidden = format!("@{name}");
                if !has_args {
                    if map.contains_key(name) {
                        return Ok(receiver.child(|v| v.get(name)));
                    }
                    let is_root = matches!(&receiver, Val::Ref(v) if std::ptr::eq(*v, self.root));
                    return match self.opts.root_type {
                        Some(_) if is_root && map.contains_key(hidden.as_str()) => Err(self.error(
                            node.pos,
                            &node.src,
                            format!("wrong number of args for {name}: want 1 got 0"),
                        )),
                        Some(t) if is_root => Err(self.error(
                            node.pos,
                            &node.src,
                            format!("can't evaluate field {name} in type {t}"),
                        )),
                        _ => Ok(Val::Missing),
                    };
                }
                let header_label = self.opts.header && name == "Label";
                let method_key = [name, hidden.as_str()]
                    .into_iter()
                    .find(|k| matches!(map.get(*k), Some(Value::Object(_))))
                    .map(str::to_string);
                let is_method = method_key.is_some();
                if !header_label && !is_method {
                    return Err(self.error(
                        node.pos,
                        &node.src,
                        format!("{name} is not a method but has arguments"),
                    ));
                }
                let mut vals = Vec::new();
                for a in args {
                    vals.push(self.eval_arg(dot, a)?);
                }
                vals.extend(final_);
                if vals.len() != 1 {
                    return Err(self.error(
                        node.pos,
                        &node.src,
                        format!("wrong number of args for {name}: want 1 got {}", vals.len()),
                    ));
                }
                let Some(Value::String(key)) = vals[0].get() else {
                    return Err(self.error(
                        node.pos,
                        &node.src,
                        format!(
                            "wrong type for value; expected string; got {}",
                            type_name(vals[0].get())
                        ),
                    ));
                };
                if header_label {
                    return Ok(Val::Owned(Value::String(header_label_of(key))));
                }
                let key = key.clone();
                let method_key = method_key.unwrap_or_default();
                let v = receiver
                    .child(|v| v.get(method_key.as_str()).and_then(|m| m.get(key.as_str())));
                Ok(match v {
                    Val::Missing => Val::Owned(Value::String(String::new())),
                    v => v,
                })
            }
            Some(other) => Err(self.error(
                node.pos,
                &node.src,
                format!(
                    "can't evaluate field {name} in type {}",
                    type_name(Some(other))
                ),
            )),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Val<'a>,
        name: &str,
        ident: &Arg,
        cmd: &Cmd,
        args: &[Arg],
        final_: Option<Val<'a>>,
    ) -> R<Val<'a>> {
        if name == "and" || name == "or" {
            let count = args.len() + usize::from(final_.is_some());
            if count == 0 {
                return Err(self.error(
                    ident.pos,
                    &ident.src,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut v = Val::Missing;
            for a in args {
                v = self.eval_arg(dot, a)?;
                if truth(v.get()) == (name == "or") {
                    return Ok(v);
                }
            }
            return Ok(final_.unwrap_or(v));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.eval_arg(dot, a)?);
        }
        vals.extend(final_);
        let ctx = CallCtx {
            header: self.opts.header,
            escape_root_html: self.opts.escape_root_html,
            root: self.root,
        };
        call(name, &vals, &ctx).map_err(|e| match e {
            CallError::Arity(m) => self.error(ident.pos, &ident.src, m),
            CallError::Type {
                index,
                want,
                message,
            } => match args.get(index) {
                Some(a) => {
                    // Go checks literal arguments against the parameter type while parsing
                    // them, with its own wording.
                    let literal = match &a.kind {
                        ArgKind::Nil => Some(format!("cannot assign nil to {want}")),
                        ArgKind::Bool(_) | ArgKind::Number(_) | ArgKind::Str(_) => {
                            Some(match want {
                                "string" => format!("expected string; found {}", a.src),
                                "int" => format!("expected integer; found {}", a.src),
                                _ => format!("can't handle {} for arg of type {want}", a.src),
                            })
                        }
                        _ => None,
                    };
                    self.error(a.pos, &a.src, literal.unwrap_or(message))
                }
                None => self.error(cmd.pos, &cmd.src, message),
            },
            CallError::Call(m) => self.error(cmd.pos, &cmd.src, m),
        })
    }

    fn eval_arg(&mut self, dot: &Val<'a>, arg: &Arg) -> R<Val<'a>> {
        Ok(match &arg.kind {
            ArgKind::Dot => dot.clone(),
            ArgKind::Nil => Val::Owned(Value::Null),
            ArgKind::Bool(b) => Val::Owned(Value::Bool(*b)),
            ArgKind::Str(s) => Val::Owned(Value::String(s.clone())),
            ArgKind::Number(Num::Int(i)) => Val::Owned(Value::from(*i)),
            ArgKind::Number(Num::Float(f)) => {
                Val::Owned(serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number))
            }
            ArgKind::Field(names) => self.eval_fields(dot, dot.clone(), names, arg, &[], None)?,
            ArgKind::Variable(name, fields) => {
                let v = self.lookup_var(name);
                self.eval_fields(dot, v, fields, arg, &[], None)?
            }
            ArgKind::Chain(term, names) => {
                let base = self.eval_arg(dot, term)?;
                self.eval_fields(dot, base, names, arg, &[], None)?
            }
            ArgKind::Pipe(p) => self.eval_pipeline(dot, p)?,
            ArgKind::Ident(name) => {
                let cmd = Cmd {
                    args: vec![arg.clone()],
                    pos: arg.pos,
                    src: arg.src.clone(),
                };
                self.eval_function(dot, name, arg, &cmd, &[], None)?
            }
        })
    }
}

/// Map keys in Go's order (sorted bytewise), whatever order the map keeps.
fn sorted_keys(map: &serde_json::Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    keys
}

/// docker's `SubHeaderContext.Label`: the last dot-separated part, with `-` and `_` as spaces.
fn header_label_of(name: &str) -> String {
    let last = name.rsplit('.').next().unwrap_or(name);
    last.replace(['-', '_'], " ")
}
