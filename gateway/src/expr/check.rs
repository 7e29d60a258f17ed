//! The checks a filter expression passes before any event sees it: every name, field and
//! function is known, obvious type mistakes (a string compared with a number, an enum with its
//! name in quotes) and results that cannot be true or false are refused, the expression is small
//! enough, and comprehensions do not nest. Each problem says where it is.
//!
//! The checker also works out which topics an expression can match at all, so the hub need not
//! offer it events it would refuse anyway.

use cel::{
    IdedExpr,
    common::ast::{
        ComprehensionExpr, EntryExpr, Expr, LiteralValue, SelectExpr, SourceInfo, operators,
    },
};
use streamweaver_proto::topics::Topic;

use super::{
    Limits, RegexCache,
    schema::{self, Message, Scalar, Ty},
};

/// What is wrong, and where: a byte offset into the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) offset: Option<u32>,
    pub(crate) kind: ProblemKind,
    pub(crate) message: String,
}

/// The kinds of problems, a fixed set for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProblemKind {
    /// Unknown names, fields or functions; wrong types.
    Invalid,
    /// Too many nodes, too deep, too many or nested comprehensions.
    TooComplex,
}

/// Member functions of strings and what they give.
const STRING_METHODS: &[(&str, Ty)] = &[
    ("startsWith", Ty::Bool),
    ("endsWith", Ty::Bool),
    ("contains", Ty::Bool),
    ("matches", Ty::Bool),
    ("size", Ty::Int),
];

/// Member functions of timestamps (all give an `int`).
const TIMESTAMP_METHODS: &[&str] = &[
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
];

/// Global functions and what they give.
const GLOBAL_FUNCTIONS: &[(&str, Ty)] = &[
    ("size", Ty::Int),
    ("int", Ty::Int),
    ("uint", Ty::Uint),
    ("double", Ty::Double),
    ("string", Ty::String),
    ("bool", Ty::Bool),
    ("timestamp", Ty::Timestamp),
    ("duration", Ty::Duration),
];

/// Which events an expression can match at all, by [`Topic::index`]: what the hub routes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reach {
    /// Whether an event of the topic can match.
    pub(crate) topics: [bool; 3],
    /// The keys (symbol, author or service) an event of the topic must have to match, sorted;
    /// `None` when any may.
    pub(crate) keys: [Option<Box<[Box<str>]>>; 3],
}

/// Checks `expr`, parsed from `source`; on success, which events it can match.
pub(crate) fn check(
    expr: &IdedExpr,
    info: &SourceInfo,
    limits: &Limits,
    regexes: &RegexCache,
) -> Result<Reach, Problem> {
    let mut checker = Checker {
        info,
        limits,
        regexes,
        scopes: Vec::new(),
        nodes: 0,
        comprehensions: 0,
        loop_depth: 0,
    };
    let ty = checker.check(expr, 0, None)?;
    if !matches!(ty, Ty::Bool | Ty::Dyn) {
        return Err(checker.problem(
            expr,
            None,
            format!(
                "a filter must be true or false for each event, but this is {}",
                ty.describe()
            ),
        ));
    }
    let mut reach = Reach {
        topics: [true; 3],
        keys: Default::default(),
    };
    for message in Message::ALL {
        let index = message.topic().index();
        reach.topics[index] = !fails_on(expr, message.topic());
        reach.keys[index] = required_keys(expr, message).map(|mut keys| {
            keys.sort_unstable();
            keys.dedup();
            keys.into_iter().map(Box::from).collect()
        });
    }
    Ok(reach)
}

struct Checker<'a> {
    info: &'a SourceInfo,
    limits: &'a Limits,
    regexes: &'a RegexCache,
    /// Comprehension variables in scope, innermost last.
    scopes: Vec<(String, Ty)>,
    nodes: usize,
    comprehensions: usize,
    /// How many comprehension bodies enclose the node being checked.
    loop_depth: usize,
}

impl Checker<'_> {
    fn problem(&self, expr: &IdedExpr, fallback: Option<u32>, message: String) -> Problem {
        Problem {
            offset: self.offset(expr).or(fallback),
            kind: ProblemKind::Invalid,
            message,
        }
    }

    fn too_complex(&self, expr: &IdedExpr, fallback: Option<u32>, message: String) -> Problem {
        Problem {
            kind: ProblemKind::TooComplex,
            ..self.problem(expr, fallback, message)
        }
    }

    fn offset(&self, expr: &IdedExpr) -> Option<u32> {
        self.info.offset_for(expr.id).map(|(start, _)| start)
    }

    /// Checks one node; `at` is the nearest enclosing position, for nodes a macro made.
    fn check(&mut self, expr: &IdedExpr, depth: usize, at: Option<u32>) -> Result<Ty, Problem> {
        let at = self.offset(expr).or(at);
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(self.too_complex(
                expr,
                at,
                format!(
                    "the filter is too large: at most {} operations and values",
                    self.limits.max_nodes
                ),
            ));
        }
        if depth > self.limits.max_depth {
            return Err(self.too_complex(
                expr,
                at,
                format!(
                    "the filter nests too deeply: at most {} levels",
                    self.limits.max_depth
                ),
            ));
        }
        let depth = depth + 1;
        match &expr.expr {
            Expr::Literal(literal) => Ok(match literal {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Null => Ty::Null,
                LiteralValue::String(_) => Ty::String,
                LiteralValue::UInt(_) => Ty::Uint,
            }),
            Expr::Ident(name) => self.ident(expr, name, at),
            Expr::Select(select) => self.select(expr, select, depth, at),
            Expr::Call(_) => self.call(expr, depth, at),
            Expr::List(list) => {
                let mut element = None;
                let mut same = true;
                for item in &list.elements {
                    let ty = self.check(item, depth, at)?;
                    match element {
                        None => element = Some(ty),
                        Some(first) if first != ty => same = false,
                        Some(_) => {}
                    }
                }
                let scalar = match (same, element) {
                    (true, Some(Ty::Int)) => Some(Scalar::Int),
                    (true, Some(Ty::Double)) => Some(Scalar::Double),
                    (true, Some(Ty::String)) => Some(Scalar::String),
                    (true, Some(Ty::Bool)) => Some(Scalar::Bool),
                    _ => None,
                };
                Ok(Ty::List(scalar))
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(entry) = &entry.expr {
                        self.check(&entry.key, depth, at)?;
                        self.check(&entry.value, depth, at)?;
                    }
                }
                Ok(Ty::Map)
            }
            Expr::Struct(literal) => Err(self.problem(
                expr,
                at,
                format!(
                    "message literals ({}{{…}}) are not offered",
                    literal.type_name
                ),
            )),
            Expr::Comprehension(comprehension) => {
                self.comprehension(expr, comprehension, depth, at)
            }
            Expr::Unspecified => Err(self.problem(expr, at, "an empty expression".into())),
        }
    }

    fn ident(&self, expr: &IdedExpr, name: &str, at: Option<u32>) -> Result<Ty, Problem> {
        if let Some((_, ty)) = self.scopes.iter().rev().find(|(n, _)| n == name) {
            return Ok(*ty);
        }
        if let Some(ty) = schema::variable(name) {
            return Ok(ty);
        }
        let suggestion = closest(name, schema::variable_names())
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_default();
        let names = schema::variable_names().collect::<Vec<_>>().join(", ");
        Err(self.problem(
            expr,
            at,
            format!(
                "unknown name {name}{suggestion}; a filter can use {names}, \
                 and enum constants such as LOG_LEVEL_ERROR or TRADE_SIDE_BUY"
            ),
        ))
    }

    fn select(
        &mut self,
        expr: &IdedExpr,
        select: &SelectExpr,
        depth: usize,
        at: Option<u32>,
    ) -> Result<Ty, Problem> {
        let operand = self.check(&select.operand, depth, at)?;
        let field = select.field.as_str();
        let ty = match operand {
            Ty::Message(message) => message.field(field).ok_or_else(|| {
                let suggestion = closest(field, message.fields().iter().map(|(f, _)| *f))
                    .map(|s| format!(" (did you mean {s}?)"))
                    .unwrap_or_default();
                let fields = message
                    .fields()
                    .iter()
                    .map(|(f, _)| *f)
                    .collect::<Vec<_>>()
                    .join(", ");
                self.problem(
                    expr,
                    at,
                    format!(
                        "{} has no field {field}{suggestion}; its fields are {fields}",
                        message.variable()
                    ),
                )
            })?,
            Ty::Map | Ty::Dyn => Ty::Dyn,
            other => {
                return Err(self.problem(
                    expr,
                    at,
                    format!(
                        "{} has no fields, so .{field} means nothing",
                        other.describe()
                    ),
                ));
            }
        };
        Ok(if select.test { Ty::Bool } else { ty })
    }

    fn call(&mut self, expr: &IdedExpr, depth: usize, at: Option<u32>) -> Result<Ty, Problem> {
        let Expr::Call(call) = &expr.expr else {
            return Ok(Ty::Dyn);
        };
        let name = call.func_name.as_str();
        let target = match &call.target {
            Some(target) => Some(self.check(target, depth, at)?),
            None => None,
        };
        let mut args = Vec::with_capacity(call.args.len());
        for arg in &call.args {
            args.push(self.check(arg, depth, at)?);
        }
        let bad_operands = |checker: &Self, what: &str| {
            let described = args
                .iter()
                .map(|ty| ty.describe())
                .collect::<Vec<_>>()
                .join(" and ");
            checker.problem(expr, at, format!("{what} cannot be used with {described}"))
        };
        match (name, target, args.as_slice()) {
            (operators::LOGICAL_AND | operators::LOGICAL_OR, None, [left, right]) => {
                let op = if name == operators::LOGICAL_AND {
                    "&&"
                } else {
                    "||"
                };
                self.need_bool(expr, at, *left, op)?;
                self.need_bool(expr, at, *right, op)?;
                Ok(Ty::Bool)
            }
            (operators::LOGICAL_NOT, None, [operand]) => {
                self.need_bool(expr, at, *operand, "!")?;
                Ok(Ty::Bool)
            }
            (operators::NOT_STRICTLY_FALSE, None, [_]) => Ok(Ty::Bool),
            (operators::EQUALS | operators::NOT_EQUALS, None, [left, right]) => {
                self.comparable(expr, call.args.as_slice(), *left, *right, at)?;
                Ok(Ty::Bool)
            }
            (
                operators::LESS
                | operators::LESS_EQUALS
                | operators::GREATER
                | operators::GREATER_EQUALS,
                None,
                [left, right],
            ) => {
                self.comparable(expr, call.args.as_slice(), *left, *right, at)?;
                if !left.orders() || !right.orders() {
                    return Err(bad_operands(self, "< <= > >="));
                }
                Ok(Ty::Bool)
            }
            (operators::IN, None, [element, container]) => {
                match container {
                    Ty::List(Some(scalar)) => {
                        self.comparable(expr, call.args.as_slice(), *element, scalar.ty(), at)?;
                    }
                    Ty::List(None) | Ty::Map | Ty::Dyn => {}
                    other => {
                        return Err(self.problem(
                            expr,
                            at,
                            format!(
                                "in needs a list or a map on its right, not {}",
                                other.describe()
                            ),
                        ));
                    }
                }
                Ok(Ty::Bool)
            }
            (operators::CONDITIONAL, None, [condition, yes, no]) => {
                self.need_bool(expr, at, *condition, "?:")?;
                Ok(if yes == no { *yes } else { Ty::Dyn })
            }
            (
                operators::ADD
                | operators::SUBSTRACT
                | operators::MULTIPLY
                | operators::DIVIDE
                | operators::MODULO,
                None,
                [left, right],
            ) => {
                if !left.computes() || !right.computes() {
                    return Err(bad_operands(self, "arithmetic"));
                }
                Ok(match (left, right) {
                    (Ty::Int, Ty::Int) => Ty::Int,
                    (Ty::Double, Ty::Double) => Ty::Double,
                    (Ty::String, Ty::String) if name == operators::ADD => Ty::String,
                    _ => Ty::Dyn,
                })
            }
            (operators::NEGATE, None, [operand]) => Ok(match operand {
                Ty::Int | Ty::Double => *operand,
                Ty::Dyn => Ty::Dyn,
                other => {
                    return Err(self.problem(
                        expr,
                        at,
                        format!("- needs a number, not {}", other.describe()),
                    ));
                }
            }),
            (operators::INDEX, None, [container, _]) => Ok(match container {
                Ty::List(Some(scalar)) => scalar.ty(),
                Ty::List(None) | Ty::Map | Ty::Dyn => Ty::Dyn,
                other => {
                    return Err(self.problem(
                        expr,
                        at,
                        format!("[…] needs a list or a map, not {}", other.describe()),
                    ));
                }
            }),
            ("matches", Some(Ty::String | Ty::Dyn), [_]) => {
                self.pattern(expr, &call.args[0], at)?;
                Ok(Ty::Bool)
            }
            (method, Some(Ty::String | Ty::Dyn), [_] | [])
                if STRING_METHODS.iter().any(|(m, _)| *m == method) =>
            {
                let (_, ty) = STRING_METHODS
                    .iter()
                    .find(|(m, _)| *m == method)
                    .copied()
                    .unwrap_or((method, Ty::Dyn));
                if let [arg] = args.as_slice()
                    && !matches!(arg, Ty::String | Ty::Dyn)
                {
                    return Err(self.problem(
                        expr,
                        at,
                        format!("{method} needs a string argument, not {}", arg.describe()),
                    ));
                }
                Ok(ty)
            }
            ("size", Some(Ty::List(_) | Ty::Map), []) => Ok(Ty::Int),
            (method, Some(Ty::Timestamp | Ty::Dyn), [] | [_])
                if TIMESTAMP_METHODS.contains(&method) =>
            {
                Ok(Ty::Int)
            }
            (function, None, [_]) if GLOBAL_FUNCTIONS.iter().any(|(f, _)| *f == function) => {
                Ok(GLOBAL_FUNCTIONS
                    .iter()
                    .find(|(f, _)| *f == function)
                    .map_or(Ty::Dyn, |(_, ty)| *ty))
            }
            (function, Some(target), _) => {
                let offered = if matches!(target, Ty::Timestamp) {
                    TIMESTAMP_METHODS.join(", ")
                } else {
                    STRING_METHODS
                        .iter()
                        .map(|(m, _)| *m)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                Err(self.problem(
                    expr,
                    at,
                    format!(
                        "{} has no function {function} taking {} argument(s); offered: {offered}",
                        target.describe(),
                        args.len()
                    ),
                ))
            }
            (function, None, _) => {
                let offered = GLOBAL_FUNCTIONS
                    .iter()
                    .map(|(f, _)| *f)
                    .chain(["has", "all", "exists", "exists_one", "map", "filter"])
                    .collect::<Vec<_>>()
                    .join(", ");
                Err(self.problem(
                    expr,
                    at,
                    format!(
                        "unknown function {function} with {} argument(s); offered: {offered}, \
                         and the string functions {}",
                        args.len(),
                        STRING_METHODS
                            .iter()
                            .map(|(m, _)| *m)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
        }
    }

    /// Refuses `ty` where `op` needs true or false.
    fn need_bool(&self, expr: &IdedExpr, at: Option<u32>, ty: Ty, op: &str) -> Result<(), Problem> {
        if matches!(ty, Ty::Bool | Ty::Dyn) {
            return Ok(());
        }
        Err(self.problem(
            expr,
            at,
            format!("{op} needs true or false, not {}", ty.describe()),
        ))
    }

    /// Refuses comparisons that are always false or always an error: a string with a number,
    /// an enum with a string (its name in quotes), a bool with anything else.
    fn comparable(
        &self,
        expr: &IdedExpr,
        operands: &[IdedExpr],
        left: Ty,
        right: Ty,
        at: Option<u32>,
    ) -> Result<(), Problem> {
        let enum_and_string = match (left, right) {
            (Ty::Enum(kind), Ty::String) => Some((kind, operands.get(1))),
            (Ty::String, Ty::Enum(kind)) => Some((kind, operands.first())),
            _ => None,
        };
        if let Some((kind, string)) = enum_and_string {
            let hint = string
                .and_then(|s| match &s.expr {
                    Expr::Literal(LiteralValue::String(name)) => Some(name.inner().to_owned()),
                    _ => None,
                })
                .filter(|name| kind.number(name).is_some())
                .map(|name| format!("write {name} without quotes"))
                .unwrap_or_else(|| format!("use the constants {}*", kind.prefix()));
            return Err(self.problem(
                expr,
                at,
                format!("enums are numbers here, never equal to a string: {hint}"),
            ));
        }
        let family = |ty: Ty| -> Option<u8> {
            match ty {
                t if t.is_number() => Some(0),
                Ty::String => Some(1),
                Ty::Bool => Some(2),
                Ty::Timestamp => Some(3),
                Ty::Duration => Some(4),
                Ty::Bytes => Some(5),
                Ty::List(_) => Some(6),
                Ty::Map => Some(7),
                Ty::Message(_) => Some(8),
                _ => None,
            }
        };
        if let (Some(l), Some(r)) = (family(left), family(right))
            && l != r
        {
            return Err(self.problem(
                expr,
                at,
                format!(
                    "{} and {} are never equal and do not compare",
                    left.describe(),
                    right.describe()
                ),
            ));
        }
        Ok(())
    }

    /// `matches` takes a literal pattern, compiled now (and once) so no event pays for it.
    fn pattern(&self, expr: &IdedExpr, pattern: &IdedExpr, at: Option<u32>) -> Result<(), Problem> {
        let Expr::Literal(LiteralValue::String(pattern_text)) = &pattern.expr else {
            return Err(self.problem(
                expr,
                at,
                "matches needs a literal pattern, e.g. matches(\"^pay\")".into(),
            ));
        };
        self.regexes
            .compile(pattern_text.inner())
            .map(|_| ())
            .map_err(|error| self.problem(pattern, at, format!("bad pattern: {error}")))
    }

    fn comprehension(
        &mut self,
        expr: &IdedExpr,
        comprehension: &ComprehensionExpr,
        depth: usize,
        at: Option<u32>,
    ) -> Result<Ty, Problem> {
        self.comprehensions += 1;
        if self.loop_depth > 0 {
            return Err(self.too_complex(
                expr,
                at,
                "all/exists/exists_one/map/filter cannot nest inside another".into(),
            ));
        }
        if self.comprehensions > self.limits.max_comprehensions {
            return Err(self.too_complex(
                expr,
                at,
                format!(
                    "at most {} all/exists/exists_one/map/filter in one filter",
                    self.limits.max_comprehensions
                ),
            ));
        }
        let range = self.check(&comprehension.iter_range, depth, at)?;
        let element = match range {
            Ty::List(Some(scalar)) => scalar.ty(),
            Ty::List(None) | Ty::Map | Ty::Dyn => Ty::Dyn,
            other => {
                return Err(self.problem(
                    expr,
                    at,
                    format!(
                        "a list or a map is needed to loop over, not {}",
                        other.describe()
                    ),
                ));
            }
        };
        let accumulator = self.check(&comprehension.accu_init, depth, at)?;
        let bound = self.scopes.len();
        self.scopes.push((comprehension.iter_var.clone(), element));
        if let Some(second) = &comprehension.iter_var2 {
            self.scopes.push((second.clone(), Ty::Dyn));
        }
        self.scopes
            .push((comprehension.accu_var.clone(), accumulator));
        self.loop_depth += 1;
        let body = [
            &comprehension.loop_cond,
            &comprehension.loop_step,
            &comprehension.result,
        ]
        .into_iter()
        .map(|part| self.check(part, depth, at))
        .collect::<Result<Vec<_>, _>>();
        self.loop_depth -= 1;
        self.scopes.truncate(bound);
        let result = body?.pop().unwrap_or(Ty::Dyn);
        Ok(match result {
            // `map` and `filter` accumulate into a list.
            Ty::List(_) => Ty::List(None),
            other => other,
        })
    }
}

/// Whether `expr` surely fails (an error, which never matches) on every event of `topic`,
/// because it reads a field of another topic's payload where no `||`, `has()` or loop can
/// absorb the failure. Sound, not complete: when unsure, it says no.
fn fails_on(expr: &IdedExpr, topic: Topic) -> bool {
    match &expr.expr {
        Expr::Select(select) if !select.test => match &select.operand.expr {
            Expr::Ident(name) => Message::ALL
                .into_iter()
                .any(|m| m.variable() == name && m.topic() != topic),
            _ => fails_on(&select.operand, topic),
        },
        Expr::Call(call) => match call.func_name.as_str() {
            operators::LOGICAL_AND | operators::LOGICAL_OR => {
                call.args.iter().all(|arg| fails_on(arg, topic))
            }
            operators::CONDITIONAL => match call.args.as_slice() {
                [condition, yes, no] => {
                    fails_on(condition, topic) || (fails_on(yes, topic) && fails_on(no, topic))
                }
                _ => false,
            },
            operators::NOT_STRICTLY_FALSE => false,
            _ => {
                call.target.as_deref().is_some_and(|t| fails_on(t, topic))
                    || call.args.iter().any(|arg| fails_on(arg, topic))
            }
        },
        Expr::List(list) => list.elements.iter().any(|e| fails_on(e, topic)),
        Expr::Comprehension(comprehension) => fails_on(&comprehension.iter_range, topic),
        _ => false,
    }
}

/// The keys an event carrying `message` must have for `expr` to be true, when the expression
/// says so plainly: `stock_trade.symbol == "NVDA"`, `stock_trade.symbol in ["NVDA", "META"]`,
/// combined with `&&` (either side's keys, or both's common ones) and `||` (both sides' keys
/// together). Sound: when unsure, `None` (any key).
fn required_keys(expr: &IdedExpr, message: Message) -> Option<Vec<&str>> {
    let Expr::Call(call) = &expr.expr else {
        return None;
    };
    let is_key = |e: &IdedExpr| match &e.expr {
        Expr::Select(select) if !select.test && select.field == message.key_field() => {
            matches!(&select.operand.expr, Expr::Ident(name) if name == message.variable())
        }
        _ => false,
    };
    fn string(e: &IdedExpr) -> Option<&str> {
        match &e.expr {
            Expr::Literal(LiteralValue::String(s)) => Some(s.inner()),
            _ => None,
        }
    }
    match (call.func_name.as_str(), call.args.as_slice()) {
        (operators::LOGICAL_AND, [left, right]) => {
            match (required_keys(left, message), required_keys(right, message)) {
                (Some(left), Some(right)) => {
                    Some(left.into_iter().filter(|k| right.contains(k)).collect())
                }
                (left, right) => left.or(right),
            }
        }
        (operators::LOGICAL_OR, [left, right]) => {
            let mut keys = required_keys(left, message)?;
            keys.extend(required_keys(right, message)?);
            Some(keys)
        }
        (operators::EQUALS, [left, right]) if is_key(left) => string(right).map(|k| vec![k]),
        (operators::EQUALS, [left, right]) if is_key(right) => string(left).map(|k| vec![k]),
        (operators::IN, [element, list]) if is_key(element) => match &list.expr {
            Expr::List(list) => list.elements.iter().map(string).collect(),
            _ => None,
        },
        _ => None,
    }
}

/// The candidate closest to `name`, if it is close enough to be a likely typo.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, for suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
