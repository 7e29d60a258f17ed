//! What a filter expression sees of an event: its names, the fields of each payload and their
//! types (for the checker), and the values themselves, read straight from the decoded event when
//! an expression asks for them — nothing is copied into a CEL map first.

use cel::{
    ExecutionError,
    common::{
        traits::Indexer,
        types::{CelDouble, CelInt, CelList, CelString, CelTimestamp, Type},
        value::{CowVal, Val},
    },
    context::VariableResolver,
};
use streamweaver_proto::{
    topics::Topic,
    v1::{Event, LogEntry, LogLevel, SocialPost, StockTrade, TradeSide, event::Payload},
};

/// The static type of a name or field, as far as the checker knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    Timestamp,
    Duration,
    /// A list whose elements are of this scalar type, or unknown (`None`).
    List(Option<Scalar>),
    Map,
    /// An enum field or constant: an `int` at run time.
    Enum(EnumKind),
    /// A payload message.
    Message(Message),
    /// Not known before the event is seen.
    Dyn,
}

/// Element types a list may be known to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    Int,
    Double,
    String,
    Bool,
}

impl Scalar {
    pub(crate) fn ty(self) -> Ty {
        match self {
            Self::Int => Ty::Int,
            Self::Double => Ty::Double,
            Self::String => Ty::String,
            Self::Bool => Ty::Bool,
        }
    }
}

impl Ty {
    /// How the type reads in an error message.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Ty::Bool => "a bool",
            Ty::Int | Ty::Uint => "a number (int)",
            Ty::Double => "a number (double)",
            Ty::String => "a string",
            Ty::Bytes => "bytes",
            Ty::Null => "null",
            Ty::Timestamp => "a timestamp",
            Ty::Duration => "a duration",
            Ty::List(_) => "a list",
            Ty::Map => "a map",
            Ty::Enum(_) => "an enum (a number)",
            Ty::Message(_) => "a message",
            Ty::Dyn => "a value",
        }
    }

    /// Numbers of any kind compare with each other.
    pub(crate) fn is_number(self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double | Ty::Enum(_))
    }

    /// Whether `<` and friends may apply.
    pub(crate) fn orders(self) -> bool {
        self.is_number()
            || matches!(
                self,
                Ty::String | Ty::Timestamp | Ty::Duration | Ty::Bool | Ty::Bytes | Ty::Dyn
            )
    }

    /// Whether `+ - * / %` may apply.
    pub(crate) fn computes(self) -> bool {
        self.is_number()
            || matches!(
                self,
                Ty::String | Ty::List(_) | Ty::Timestamp | Ty::Duration | Ty::Bytes | Ty::Dyn
            )
    }
}

/// The enums of the payloads, offered as their numbers with named constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnumKind {
    TradeSide,
    LogLevel,
}

impl EnumKind {
    /// The prefix of its value names, e.g. `LOG_LEVEL_`.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Self::TradeSide => "TRADE_SIDE_",
            Self::LogLevel => "LOG_LEVEL_",
        }
    }

    /// The number of a value name, e.g. `LOG_LEVEL_ERROR` → 4.
    pub(crate) fn number(self, name: &str) -> Option<i64> {
        match self {
            Self::TradeSide => TradeSide::from_str_name(name).map(|v| v as i64),
            Self::LogLevel => LogLevel::from_str_name(name).map(|v| v as i64),
        }
    }
}

/// The enum constant `name` stands for, if it is one.
pub(crate) fn enum_constant(name: &str) -> Option<(EnumKind, i64)> {
    [EnumKind::TradeSide, EnumKind::LogLevel]
        .into_iter()
        .filter(|kind| name.starts_with(kind.prefix()))
        .find_map(|kind| kind.number(name).map(|number| (kind, number)))
}

/// A payload message an expression can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Message {
    StockTrade,
    SocialPost,
    LogEntry,
}

impl Message {
    /// Every payload, in the order of [`Topic::ALL`].
    pub(crate) const ALL: [Message; 3] =
        [Message::StockTrade, Message::SocialPost, Message::LogEntry];

    /// The name the payload goes by in an expression.
    pub(crate) fn variable(self) -> &'static str {
        match self {
            Self::StockTrade => "stock_trade",
            Self::SocialPost => "social_post",
            Self::LogEntry => "log_entry",
        }
    }

    /// The field that is also the Kafka record key, which the hub routes by.
    pub(crate) fn key_field(self) -> &'static str {
        match self {
            Self::StockTrade => "symbol",
            Self::SocialPost => "author",
            Self::LogEntry => "service",
        }
    }

    /// The topic whose events carry it.
    pub(crate) fn topic(self) -> Topic {
        match self {
            Self::StockTrade => Topic::StockTrades,
            Self::SocialPost => Topic::SocialFeed,
            Self::LogEntry => Topic::ServerLogs,
        }
    }

    fn cel_type(self) -> &'static Type {
        static STOCK_TRADE: Type = Type::new_struct_type("streamweaver.v1.StockTrade");
        static SOCIAL_POST: Type = Type::new_struct_type("streamweaver.v1.SocialPost");
        static LOG_ENTRY: Type = Type::new_struct_type("streamweaver.v1.LogEntry");
        match self {
            Self::StockTrade => &STOCK_TRADE,
            Self::SocialPost => &SOCIAL_POST,
            Self::LogEntry => &LOG_ENTRY,
        }
    }

    /// Its fields, with proto field names, and their types. `uint32` fields read as `int`
    /// (CEL's `uint` does not compare equal to an `int` literal, which surprises: `== 500`).
    pub(crate) fn fields(self) -> &'static [(&'static str, Ty)] {
        match self {
            Self::StockTrade => &[
                ("trade_id", Ty::String),
                ("symbol", Ty::String),
                ("price", Ty::Double),
                ("quantity", Ty::Int),
                ("side", Ty::Enum(EnumKind::TradeSide)),
                ("exchange", Ty::String),
                ("timestamp", Ty::Timestamp),
            ],
            Self::SocialPost => &[
                ("post_id", Ty::String),
                ("author", Ty::String),
                ("text", Ty::String),
                ("hashtags", Ty::List(Some(Scalar::String))),
                ("likes", Ty::Int),
                ("reposts", Ty::Int),
                ("timestamp", Ty::Timestamp),
            ],
            Self::LogEntry => &[
                ("log_id", Ty::String),
                ("service", Ty::String),
                ("level", Ty::Enum(EnumKind::LogLevel)),
                ("message", Ty::String),
                ("host", Ty::String),
                ("endpoint", Ty::String),
                ("status_code", Ty::Int),
                ("latency_ms", Ty::Double),
                ("trace_id", Ty::String),
                ("timestamp", Ty::Timestamp),
            ],
        }
    }

    /// The type of field `name`, if it has one.
    pub(crate) fn field(self, name: &str) -> Option<Ty> {
        self.fields()
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, ty)| *ty)
    }
}

/// The names an expression may use besides the payloads and enum constants.
pub(crate) const EVENT_VARIABLES: [(&str, Ty); 4] = [
    ("topic", Ty::String),
    ("key", Ty::String),
    ("partition", Ty::Int),
    ("offset", Ty::Int),
];

/// The type of a global name: an event variable, a payload or an enum constant.
pub(crate) fn variable(name: &str) -> Option<Ty> {
    if let Some((_, ty)) = EVENT_VARIABLES.iter().find(|(n, _)| *n == name) {
        return Some(*ty);
    }
    if let Some(message) = Message::ALL.into_iter().find(|m| m.variable() == name) {
        return Some(Ty::Message(message));
    }
    enum_constant(name).map(|(kind, _)| Ty::Enum(kind))
}

/// Every global name, for "did you mean" and for listing them.
pub(crate) fn variable_names() -> impl Iterator<Item = &'static str> {
    EVENT_VARIABLES
        .iter()
        .map(|(name, _)| *name)
        .chain(Message::ALL.iter().map(|m| m.variable()))
}

/// A payload as a CEL value: its fields are read from the event on access. A payload of
/// another topic is `Absent`: reading a field of it fails with "no such key", which the
/// expression treats as "this event does not match", and `has()` of one is `false`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PayloadVal<'a> {
    StockTrade(&'a StockTrade),
    SocialPost(&'a SocialPost),
    LogEntry(&'a LogEntry),
    Absent(Message),
}

impl PayloadVal<'_> {
    fn message(&self) -> Message {
        match self {
            Self::StockTrade(_) => Message::StockTrade,
            Self::SocialPost(_) => Message::SocialPost,
            Self::LogEntry(_) => Message::LogEntry,
            Self::Absent(message) => *message,
        }
    }
}

/// A field's value, borrowing the event for `'v`.
type FieldVal<'v> = Result<Box<dyn Val + 'v>, ExecutionError>;

fn string(value: &str) -> FieldVal<'_> {
    Ok(Box::new(CelString::from(value)))
}

fn int<'v>(value: impl Into<i64>) -> FieldVal<'v> {
    Ok(Box::new(CelInt::from(value.into())))
}

fn double<'v>(value: f64) -> FieldVal<'v> {
    Ok(Box::new(CelDouble::from(value)))
}

/// An unset `google.protobuf.Timestamp` is absent (`has()` is false); one out of CEL's range
/// too.
fn timestamp<'v>(value: Option<&pbjson_types::Timestamp>, field: &str) -> FieldVal<'v> {
    value
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.try_into().ok()?))
        .map(|t| Box::new(CelTimestamp::from(t.fixed_offset())) as Box<dyn Val>)
        .ok_or_else(|| ExecutionError::no_such_key(field))
}

impl<'a> PayloadVal<'a> {
    /// Field `field`, borrowing strings from the event.
    fn field(&self, field: &str) -> FieldVal<'a> {
        match *self {
            Self::StockTrade(t) => match field {
                "trade_id" => string(&t.trade_id),
                "symbol" => string(&t.symbol),
                "price" => double(t.price),
                "quantity" => int(t.quantity),
                "side" => int(t.side),
                "exchange" => string(&t.exchange),
                "timestamp" => timestamp(t.timestamp.as_ref(), field),
                _ => Err(ExecutionError::no_such_key(field)),
            },
            Self::SocialPost(p) => match field {
                "post_id" => string(&p.post_id),
                "author" => string(&p.author),
                "text" => string(&p.text),
                "hashtags" => {
                    let tags: Vec<Box<dyn Val + 'a>> = p
                        .hashtags
                        .iter()
                        .map(|tag| Box::new(CelString::from(tag.as_str())) as Box<dyn Val + 'a>)
                        .collect();
                    Ok(Box::new(CelList::from(tags)))
                }
                "likes" => int(p.likes),
                "reposts" => int(p.reposts),
                "timestamp" => timestamp(p.timestamp.as_ref(), field),
                _ => Err(ExecutionError::no_such_key(field)),
            },
            Self::LogEntry(l) => match field {
                "log_id" => string(&l.log_id),
                "service" => string(&l.service),
                "level" => int(l.level),
                "message" => string(&l.message),
                "host" => string(&l.host),
                "endpoint" => string(&l.endpoint),
                "status_code" => int(l.status_code),
                "latency_ms" => double(l.latency_ms),
                "trace_id" => string(&l.trace_id),
                "timestamp" => timestamp(l.timestamp.as_ref(), field),
                _ => Err(ExecutionError::no_such_key(field)),
            },
            Self::Absent(_) => Err(ExecutionError::no_such_key(field)),
        }
    }
}

impl Val for PayloadVal<'_> {
    fn get_type(&self) -> &Type {
        self.message().cel_type()
    }

    fn cel_type() -> &'static Type
    where
        Self: Sized,
    {
        // Never named in an overload: the type depends on the payload.
        &cel::common::types::DYN_TYPE
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(*self)
    }
}

impl<'a> Indexer for PayloadVal<'a> {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        let field =
            idx.downcast_ref::<CelString>()
                .ok_or_else(|| ExecutionError::UnexpectedType {
                    got: idx.get_type().name().to_owned(),
                    want: "string".to_owned(),
                })?;
        // `'a: 'v` because `Self: 'v`; the value borrows the event for `'a`.
        self.field(field.inner()).map(CowVal::Owned)
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(idx).map(CowVal::into_owned)
    }
}

/// The variables of one event, resolved on demand: the activation an expression is evaluated
/// against. It borrows the event and copies nothing until a name is read.
pub(crate) struct EventVars<'a> {
    event: &'a Event,
}

impl<'a> EventVars<'a> {
    pub(crate) fn new(event: &'a Event) -> Self {
        Self { event }
    }

    fn payload(&self, message: Message) -> PayloadVal<'a> {
        match (&self.event.payload, message) {
            (Some(Payload::StockTrade(t)), Message::StockTrade) => PayloadVal::StockTrade(t),
            (Some(Payload::SocialPost(p)), Message::SocialPost) => PayloadVal::SocialPost(p),
            (Some(Payload::LogEntry(l)), Message::LogEntry) => PayloadVal::LogEntry(l),
            _ => PayloadVal::Absent(message),
        }
    }
}

impl VariableResolver for EventVars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let event = self.event;
        Some(match variable {
            "topic" => CowVal::owned(CelString::from(event.topic.as_str())),
            "key" => CowVal::owned(CelString::from(event.key.as_str())),
            "partition" => CowVal::owned(CelInt::from(i64::from(event.partition))),
            "offset" => CowVal::owned(CelInt::from(event.offset)),
            "stock_trade" => CowVal::owned(self.payload(Message::StockTrade)),
            "social_post" => CowVal::owned(self.payload(Message::SocialPost)),
            "log_entry" => CowVal::owned(self.payload(Message::LogEntry)),
            // The interpreter asks for `a.b` before `a`: answering `stock_trade.price` at once
            // saves a boxed payload and a field selection. An absent payload or field is left
            // to the payload value, which says "no such key".
            name if name.contains('.') => {
                let (payload, field) = name.split_once('.')?;
                let message = Message::ALL.into_iter().find(|m| m.variable() == payload)?;
                CowVal::Owned(self.payload(message).field(field).ok()?)
            }
            name => CowVal::owned(CelInt::from(enum_constant(name)?.1)),
        })
    }
}
