//! Filter expressions: `SubscribeRequest.filter`, a CEL expression over the typed event.
//!
//! An expression sees the payload as `stock_trade`, `social_post` or `log_entry` (proto field
//! names; enums as their numbers, with the constants `LOG_LEVEL_*` and `TRADE_SIDE_*`; `uint32`
//! fields as `int`) and the event's `topic`, `key`, `partition` and `offset`. A payload of
//! another topic is absent: reading it makes the expression not match that event, and `has()`
//! of its fields is false.
//!
//! Each distinct expression is parsed and checked once ([`Expressions`], a bounded cache shared
//! by every transport), when a subscription starts: a bad one is refused with where it went
//! wrong. What may run per event is bounded: the source's length, its nesting, its number of
//! operations, at most a few loops (`all`, `exists`, …) and never one inside another, and
//! `matches` only with a literal pattern, compiled at check time. Evaluating reads the event in
//! place (no copy into a CEL map); an evaluation error or a result that is not a bool counts
//! as "no match" and is counted in `/metrics`.

mod check;
mod schema;

use std::{
    collections::HashMap,
    fmt,
    hash::{Hash, Hasher},
    sync::{Arc, LazyLock, Mutex, RwLock},
};

use cel::{
    Context, Env, ExecutionError, Program, Value,
    common::types::{CelBool, CelString},
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use regex::Regex;
use streamweaver_proto::{topics::Topic, v1::Event};

use self::check::ProblemKind;

/// Longest filter expression accepted, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 2048;
/// Distinct expressions kept compiled.
pub const CACHE_CAPACITY: usize = 1024;
/// Stack of the thread that parses an expression: the CEL parser recurses deeply per bracket.
const COMPILE_STACK_BYTES: usize = 64 << 20;
/// Most parses at once (each on its own thread).
const MAX_CONCURRENT_COMPILES: usize = 4;
/// Distinct `matches` patterns kept compiled.
const REGEX_CACHE_CAPACITY: usize = 256;
/// Largest compiled `matches` pattern.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What a filter expression may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest source, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of brackets (and `?:`) in the source.
    pub max_nesting: usize,
    /// Most nodes (operations and values) once macros are expanded.
    pub max_nodes: usize,
    /// Deepest node once macros are expanded.
    pub max_depth: usize,
    /// Most loops (`all`, `exists`, `exists_one`, `map`, `filter`); they never nest.
    pub max_comprehensions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: MAX_EXPRESSION_BYTES,
            max_nesting: 12,
            max_nodes: 400,
            max_depth: 32,
            max_comprehensions: 4,
        }
    }
}

/// Why a filter expression is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// Longer than [`Limits::max_bytes`].
    #[error("filter is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not CEL.
    #[error("filter syntax error at {at}: {message}")]
    Syntax {
        /// Where.
        at: Location,
        /// What the parser said.
        message: String,
    },
    /// An unknown name, field or function, or a type mistake.
    #[error("filter error at {at}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// Beyond [`Limits`].
    #[error("filter too complex at {at}: {message}")]
    TooComplex {
        /// Where.
        at: Location,
        /// Which limit.
        message: String,
    },
    /// The gateway could not check it now (it could not start a thread); try again.
    #[error("filter could not be checked now: {0}")]
    Unavailable(String),
}

impl ExprError {
    /// A short, fixed label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLong { .. } => "filter_too_long",
            Self::Syntax { .. } => "filter_syntax",
            Self::Invalid { .. } => "filter_invalid",
            Self::TooComplex { .. } => "filter_too_complex",
            Self::Unavailable(_) => "filter_unavailable",
        }
    }
}

/// A place in an expression's source: line and column (1-based, in characters) and the text
/// from there, so a person sees at once what is meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub column: usize,
    /// The source from that place on (its line, at most a few words).
    pub near: String,
}

impl Location {
    /// The location of byte `offset` (0-based) of `source`, as the parser counts.
    fn of(source: &str, offset: usize) -> Self {
        let mut line = 1;
        let mut column = 1;
        for (_, c) in source.char_indices().take_while(|(i, _)| *i < offset) {
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Self::at(source, line, column)
    }

    /// Line `line`, column `column` of `source`.
    fn at(source: &str, line: usize, column: usize) -> Self {
        let near: String = source
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or_default()
            .chars()
            .skip(column.saturating_sub(1))
            .take(24)
            .collect();
        Self { line, column, near }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)?;
        if self.near.trim().is_empty() {
            f.write_str(" (the end)")
        } else {
            write!(f, " ({:?})", self.near.trim_end())
        }
    }
}

/// What one evaluation said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// `true`: the subscriber wants the event.
    Match,
    /// `false`, or a payload or field the event does not have.
    NoMatch,
    /// An error (e.g. a division by zero): counted, and no match.
    Error,
    /// A value other than a bool: counted, and no match.
    NotBool,
}

/// Counters of what filter expressions cost and refused, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct ExprMetrics {
    /// Expressions parsed and checked (cache misses).
    pub compiled: Counter,
    /// Subscriptions whose expression was already compiled.
    pub cache_hits: Counter,
    /// Expressions held compiled now.
    pub cached: Gauge,
    /// Evaluations that ended in an error or a non-bool value.
    pub failures: Family<FailureLabels, Counter>,
}

/// Labels of evaluation failures.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// `error` or `not_bool`.
    pub kind: &'static str,
}

impl ExprMetrics {
    /// The failure counter of `kind`.
    fn failure(&self, kind: &'static str) -> Counter {
        self.failures.get_or_create(&FailureLabels { kind }).clone()
    }

    /// Registers the counters in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "gateway_filter_expressions_compiled",
            "Filter expressions parsed and checked (cache misses)",
            self.compiled.clone(),
        );
        registry.register(
            "gateway_filter_expression_cache_hits",
            "Subscriptions whose filter expression was already compiled",
            self.cache_hits.clone(),
        );
        registry.register(
            "gateway_filter_expressions_cached",
            "Filter expressions held compiled now",
            self.cached.clone(),
        );
        registry.register(
            "gateway_filter_expression_failures",
            "Filter evaluations that ended in an error or a non-bool value (counted as no match)",
            self.failures.clone(),
        );
    }
}

/// The CEL environment: the standard library, with `matches` served from compiled patterns.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // The standard `matches` (cel's `regex` feature, off here) compiles its pattern on every
    // call; this one looks it up in the patterns the checker compiled.
    if let Err(error) =
        cel::add_member_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>)
    {
        tracing::error!(%error, "cannot declare matches() for filter expressions");
    }
    Arc::new(env)
});

fn matches(text: &CelString<'_>, pattern: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    REGEXES
        .is_match(pattern.inner(), text.inner())
        .map(CelBool::from)
        .map_err(|error| ExecutionError::function_error("matches", error))
}

/// The compiled patterns of `matches`, shared by every expression (the function CEL calls is a
/// plain `fn`, so it cannot be handed a cache of its own). Bounded: when full it starts afresh,
/// and a pattern still in use is compiled again on its next call.
pub(crate) struct RegexCache {
    patterns: RwLock<HashMap<Box<str>, Arc<Regex>>>,
}

static REGEXES: LazyLock<RegexCache> = LazyLock::new(|| RegexCache {
    patterns: RwLock::new(HashMap::new()),
});

impl RegexCache {
    /// Compiles `pattern` (bounded in size) and keeps it.
    pub(crate) fn compile(&self, pattern: &str) -> Result<Arc<Regex>, regex::Error> {
        if let Some(regex) = self
            .patterns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(pattern)
        {
            return Ok(regex.clone());
        }
        let regex = Arc::new(
            regex::RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()?,
        );
        let mut patterns = self.patterns.write().unwrap_or_else(|e| e.into_inner());
        if patterns.len() >= REGEX_CACHE_CAPACITY {
            patterns.clear();
        }
        patterns.insert(pattern.into(), regex.clone());
        Ok(regex)
    }

    fn is_match(&self, pattern: &str, text: &str) -> Result<bool, regex::Error> {
        if let Some(regex) = self
            .patterns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(pattern)
        {
            return Ok(regex.is_match(text));
        }
        Ok(self.compile(pattern)?.is_match(text))
    }
}

/// A checked, compiled filter expression. Two are equal when their sources are.
pub struct Expression {
    source: Arc<str>,
    program: Program,
    /// Which events it can match.
    reach: check::Reach,
    errors: Counter,
    not_bool: Counter,
}

impl Expression {
    /// Parses and checks `source` within `limits`. Runs the parser on the calling thread, whose
    /// stack must be deep enough: [`Expressions`] gives it one.
    fn compile(source: &str, limits: &Limits, metrics: &ExprMetrics) -> Result<Self, ExprError> {
        if source.len() > limits.max_bytes {
            return Err(ExprError::TooLong {
                len: source.len(),
                max: limits.max_bytes,
            });
        }
        if let Some(offset) = too_deep(source, limits.max_nesting) {
            let offset = source
                .char_indices()
                .nth(offset)
                .map_or(source.len(), |(i, _)| i);
            return Err(ExprError::TooComplex {
                at: Location::of(source, offset),
                message: format!("brackets nest more than {} deep", limits.max_nesting),
            });
        }
        let program = ENV.compile(source).map_err(|errors| {
            let first = errors.errors.first();
            let (line, column) = first.map_or((1, 1), |e| {
                (e.pos.0.max(1) as usize, e.pos.1.max(1) as usize)
            });
            let message = first.map_or_else(|| "cannot parse".to_owned(), |e| e.msg.clone());
            ExprError::Syntax {
                at: Location::at(source, line, column),
                message: message
                    .strip_prefix("Syntax error: ")
                    .unwrap_or(&message)
                    .to_owned(),
            }
        })?;
        let reach = check::check(
            program.expression(),
            program.source_info(),
            limits,
            &REGEXES,
        )
        .map_err(|problem| {
            let at = Location::of(source, problem.offset.unwrap_or(0) as usize);
            match problem.kind {
                ProblemKind::Invalid => ExprError::Invalid {
                    at,
                    message: problem.message,
                },
                ProblemKind::TooComplex => ExprError::TooComplex {
                    at,
                    message: problem.message,
                },
            }
        })?;
        // One statement each: `get_or_create` holds the family's lock until the statement ends.
        let errors = metrics.failure("error");
        let not_bool = metrics.failure("not_bool");
        Ok(Self {
            source: source.into(),
            program,
            reach,
            errors,
            not_bool,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether an event of `topic` can match at all: `false` when the expression reads another
    /// topic's payload in a way nothing can rescue (e.g. `stock_trade.price > 500.0 && …` on a
    /// log line), so the hub need not evaluate it there.
    pub fn may_match(&self, topic: Topic) -> bool {
        // A topic the expression's schema does not describe (trade bars): evaluated on each event.
        self.reach
            .topics
            .get(topic.index())
            .copied()
            .unwrap_or(true)
    }

    /// The keys (symbols, authors or services; sorted) an event of `topic` must have to match,
    /// when the expression names them plainly (`stock_trade.symbol in ["NVDA", "META"]`), so
    /// the hub can route by key; `None` when any key may match.
    pub fn keys(&self, topic: Topic) -> Option<&[Box<str>]> {
        self.reach.keys.get(topic.index())?.as_deref()
    }

    /// Evaluates the expression on `event`. The activation is a borrowed view of the event,
    /// made here: it copies nothing until the expression reads a field, so making it once per
    /// evaluation costs about what sharing it would.
    pub fn evaluate(&self, event: &Event) -> Evaluation {
        let vars = schema::EventVars::new(event);
        let mut context = Context::with_env(ENV.clone());
        context.set_variable_resolver(&vars);
        match Value::resolve_val(self.program.expression(), &context) {
            Ok(value) => match value.downcast_ref::<CelBool>() {
                Some(b) if *b.inner() => Evaluation::Match,
                Some(_) => Evaluation::NoMatch,
                None => Evaluation::NotBool,
            },
            // An absent payload, or an unset field: this event is not one the filter speaks of.
            Err(ExecutionError::NoSuchKey(_)) => Evaluation::NoMatch,
            Err(_) => Evaluation::Error,
        }
    }

    /// Whether `event` matches; errors and non-bool results count as no and are counted.
    pub fn matches(&self, event: &Event) -> bool {
        match self.evaluate(event) {
            Evaluation::Match => true,
            Evaluation::NoMatch => false,
            Evaluation::Error => {
                self.errors.inc();
                false
            }
            Evaluation::NotBool => {
                self.not_bool.inc();
                false
            }
        }
    }
}

impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Expression {}

impl Hash for Expression {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.source.hash(state);
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expression").field(&self.source).finish()
    }
}

/// The character offset where brackets (and `?:`, which the parser also recurses on) first
/// nest deeper than `max`, outside string literals. The parser recurses deeply per level, so
/// this is checked on the text before parsing.
fn too_deep(source: &str, max: usize) -> Option<usize> {
    let chars: Vec<char> = source.chars().collect();
    let mut depth = 0usize;
    let mut conditionals = 0usize;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            quote @ ('"' | '\'') => {
                let triple = chars.get(i + 1) == Some(&quote) && chars.get(i + 2) == Some(&quote);
                let raw = i > 0 && matches!(chars[i - 1], 'r' | 'R');
                i += if triple { 3 } else { 1 };
                while i < chars.len() {
                    if chars[i] == '\\' && !raw {
                        i += 2;
                        continue;
                    }
                    if chars[i] == quote
                        && (!triple
                            || (chars.get(i + 1) == Some(&quote)
                                && chars.get(i + 2) == Some(&quote)))
                    {
                        i += if triple { 2 } else { 0 };
                        break;
                    }
                    i += 1;
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                if depth + conditionals > max {
                    return Some(i);
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '?' => {
                conditionals += 1;
                if depth + conditionals > max {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

struct CacheEntry {
    expression: Arc<Expression>,
    last_used: u64,
}

/// The compiled expressions, one per distinct source, shared by every subscription that uses
/// it: the gateway's one place that turns a `filter` string into an [`Expression`]. Bounded:
/// past [`CACHE_CAPACITY`] the least recently used is dropped (subscriptions holding it keep
/// their `Arc`).
pub struct Expressions {
    limits: Limits,
    capacity: usize,
    entries: Mutex<(HashMap<Arc<str>, CacheEntry>, u64)>,
    compiling: tokio::sync::Semaphore,
    metrics: ExprMetrics,
}

impl Expressions {
    /// An empty cache of at most `capacity` expressions, each within `limits`.
    pub fn new(limits: Limits, capacity: usize, metrics: ExprMetrics) -> Self {
        Self {
            limits,
            capacity: capacity.max(1),
            entries: Mutex::new((HashMap::new(), 0)),
            compiling: tokio::sync::Semaphore::new(MAX_CONCURRENT_COMPILES),
            metrics,
        }
    }

    /// The metrics it counts in.
    pub fn metrics(&self) -> &ExprMetrics {
        &self.metrics
    }

    /// The compiled `source`, from the cache or compiled now on a thread of its own; `None`
    /// for an empty (or blank) filter.
    pub async fn get(&self, source: &str) -> Result<Option<Arc<Expression>>, ExprError> {
        if source.trim().is_empty() {
            return Ok(None);
        }
        if let Some(hit) = self.lookup(source) {
            return Ok(Some(hit));
        }
        let _permit = self
            .compiling
            .acquire()
            .await
            .map_err(|e| ExprError::Unavailable(e.to_string()))?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.spawn_compile(source, move |result| {
            let _ = sender.send(result);
        })?;
        let expression = receiver
            .await
            .map_err(|_| ExprError::Unavailable("the compile thread ended early".into()))??;
        Ok(Some(self.insert(expression)))
    }

    /// As [`Expressions::get`], for callers that may block (tests, benchmarks).
    pub fn get_blocking(&self, source: &str) -> Result<Option<Arc<Expression>>, ExprError> {
        if source.trim().is_empty() {
            return Ok(None);
        }
        if let Some(hit) = self.lookup(source) {
            return Ok(Some(hit));
        }
        let (sender, receiver) = std::sync::mpsc::channel();
        self.spawn_compile(source, move |result| {
            let _ = sender.send(result);
        })?;
        let expression = receiver
            .recv()
            .map_err(|_| ExprError::Unavailable("the compile thread ended early".into()))??;
        Ok(Some(self.insert(expression)))
    }

    fn spawn_compile(
        &self,
        source: &str,
        done: impl FnOnce(Result<Expression, ExprError>) + Send + 'static,
    ) -> Result<(), ExprError> {
        let source = source.to_owned();
        let limits = self.limits.clone();
        let metrics = self.metrics.clone();
        std::thread::Builder::new()
            .name("filter-compile".into())
            .stack_size(COMPILE_STACK_BYTES)
            .spawn(move || {
                metrics.compiled.inc();
                done(Expression::compile(&source, &limits, &metrics));
            })
            .map(|_| ())
            .map_err(|e| ExprError::Unavailable(e.to_string()))
    }

    fn lookup(&self, source: &str) -> Option<Arc<Expression>> {
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (entries, clock) = &mut *guard;
        *clock += 1;
        let entry = entries.get_mut(source)?;
        entry.last_used = *clock;
        self.metrics.cache_hits.inc();
        Some(entry.expression.clone())
    }

    /// Keeps `expression`, or returns the equal one another subscriber compiled meanwhile.
    fn insert(&self, expression: Expression) -> Arc<Expression> {
        let mut guard = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (entries, clock) = &mut *guard;
        *clock += 1;
        if let Some(entry) = entries.get_mut(&expression.source) {
            entry.last_used = *clock;
            return entry.expression.clone();
        }
        if entries.len() >= self.capacity
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(source, _)| source.clone())
        {
            entries.remove(&oldest);
        }
        let expression = Arc::new(expression);
        entries.insert(
            expression.source.clone(),
            CacheEntry {
                expression: expression.clone(),
                last_used: *clock,
            },
        );
        self.metrics.cached.set(entries.len() as i64);
        expression
    }
}

impl Default for Expressions {
    fn default() -> Self {
        Self::new(Limits::default(), CACHE_CAPACITY, ExprMetrics::default())
    }
}

impl fmt::Debug for Expressions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expressions")
            .field("limits", &self.limits)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
