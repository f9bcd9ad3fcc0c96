//! The parsed form of a TraceQL query.

use stitch_model::{SpanKind, StatusCode};

/// Where an attribute is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `.name`: the span's attribute, else its resource's.
    Any,
    Span,
    Resource,
    /// An attribute of one of the span's events.
    Event,
    /// An attribute of one of the span's links.
    Link,
    /// An attribute of the instrumentation scope.
    Instrumentation,
}

impl Scope {
    pub fn from_word(word: &str) -> Option<Scope> {
        Some(match word {
            "span" => Scope::Span,
            "resource" => Scope::Resource,
            "event" => Scope::Event,
            "link" => Scope::Link,
            "instrumentation" => Scope::Instrumentation,
            _ => return None,
        })
    }

    pub fn prefix(self) -> &'static str {
        match self {
            Scope::Any => ".",
            Scope::Span => "span.",
            Scope::Resource => "resource.",
            Scope::Event => "event.",
            Scope::Link => "link.",
            Scope::Instrumentation => "instrumentation.",
        }
    }
}

/// Values a span or its trace has without attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    Name,
    Status,
    StatusMessage,
    Kind,
    Duration,
    SpanId,
    ParentId,
    TraceId,
    TraceDuration,
    RootName,
    RootService,
    EventName,
    EventTimeSinceStart,
    LinkTraceId,
    LinkSpanId,
    InstrumentationName,
    InstrumentationVersion,
    /// The span's number on entry in a depth-first walk of its trace's tree (from 1; 0 for a
    /// span whose parent is missing from the trace, and its subtree).
    NestedSetLeft,
    /// The span's number on leaving it in that walk.
    NestedSetRight,
    /// The parent's `nestedSetLeft`; -1 for a root span.
    NestedSetParent,
    /// How many children the span has in the trace.
    ChildCount,
}

/// What an intrinsic's values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    String,
    Number,
    Duration,
    Bool,
    Status,
    Kind,
    Nil,
    /// Known only when evaluated (attributes).
    Unknown,
}

impl Type {
    pub fn describe(self) -> &'static str {
        match self {
            Type::String => "a string",
            Type::Number => "a number",
            Type::Duration => "a duration",
            Type::Bool => "a boolean",
            Type::Status => "a status (ok, error, unset)",
            Type::Kind => "a span kind (server, client, ...)",
            Type::Nil => "nil",
            Type::Unknown => "an attribute",
        }
    }
}

impl Intrinsic {
    /// The intrinsic a name stands for, in its current (`span:name`) and older (`name`) forms.
    pub fn from_word(word: &str) -> Option<Intrinsic> {
        Some(match word {
            "name" | "span:name" => Intrinsic::Name,
            "status" | "span:status" => Intrinsic::Status,
            "statusMessage" | "span:statusMessage" => Intrinsic::StatusMessage,
            "kind" | "span:kind" => Intrinsic::Kind,
            "duration" | "span:duration" => Intrinsic::Duration,
            "span:id" => Intrinsic::SpanId,
            "span:parentID" => Intrinsic::ParentId,
            "trace:id" => Intrinsic::TraceId,
            "traceDuration" | "trace:duration" => Intrinsic::TraceDuration,
            "rootName" | "trace:rootName" => Intrinsic::RootName,
            "rootServiceName" | "trace:rootService" => Intrinsic::RootService,
            "event:name" => Intrinsic::EventName,
            "event:timeSinceStart" => Intrinsic::EventTimeSinceStart,
            "link:traceID" => Intrinsic::LinkTraceId,
            "link:spanID" => Intrinsic::LinkSpanId,
            "instrumentation:name" => Intrinsic::InstrumentationName,
            "instrumentation:version" => Intrinsic::InstrumentationVersion,
            "nestedSetLeft" => Intrinsic::NestedSetLeft,
            "nestedSetRight" => Intrinsic::NestedSetRight,
            "nestedSetParent" => Intrinsic::NestedSetParent,
            "span:childCount" => Intrinsic::ChildCount,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Intrinsic::Name => "name",
            Intrinsic::Status => "status",
            Intrinsic::StatusMessage => "statusMessage",
            Intrinsic::Kind => "kind",
            Intrinsic::Duration => "duration",
            Intrinsic::SpanId => "span:id",
            Intrinsic::ParentId => "span:parentID",
            Intrinsic::TraceId => "trace:id",
            Intrinsic::TraceDuration => "trace:duration",
            Intrinsic::RootName => "trace:rootName",
            Intrinsic::RootService => "trace:rootService",
            Intrinsic::EventName => "event:name",
            Intrinsic::EventTimeSinceStart => "event:timeSinceStart",
            Intrinsic::LinkTraceId => "link:traceID",
            Intrinsic::LinkSpanId => "link:spanID",
            Intrinsic::InstrumentationName => "instrumentation:name",
            Intrinsic::InstrumentationVersion => "instrumentation:version",
            Intrinsic::NestedSetLeft => "nestedSetLeft",
            Intrinsic::NestedSetRight => "nestedSetRight",
            Intrinsic::NestedSetParent => "nestedSetParent",
            Intrinsic::ChildCount => "span:childCount",
        }
    }

    pub fn value_type(self) -> Type {
        match self {
            Intrinsic::Status => Type::Status,
            Intrinsic::Kind => Type::Kind,
            Intrinsic::Duration | Intrinsic::TraceDuration | Intrinsic::EventTimeSinceStart => {
                Type::Duration
            }
            Intrinsic::NestedSetLeft
            | Intrinsic::NestedSetRight
            | Intrinsic::NestedSetParent
            | Intrinsic::ChildCount => Type::Number,
            _ => Type::String,
        }
    }

    /// Evaluated once per event of the span.
    pub fn per_event(self) -> bool {
        matches!(self, Intrinsic::EventName | Intrinsic::EventTimeSinceStart)
    }

    /// Evaluated once per link of the span.
    pub fn per_link(self) -> bool {
        matches!(self, Intrinsic::LinkTraceId | Intrinsic::LinkSpanId)
    }
}

/// A constant in a query.
#[derive(Clone, Debug, PartialEq)]
pub enum Static {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Nanoseconds.
    Duration(i64),
    Status(StatusCode),
    Kind(SpanKind),
    Nil,
}

impl Static {
    pub fn value_type(&self) -> Type {
        match self {
            Static::Str(_) => Type::String,
            Static::Int(_) | Static::Float(_) => Type::Number,
            Static::Bool(_) => Type::Bool,
            Static::Duration(_) => Type::Duration,
            Static::Status(_) => Type::Status,
            Static::Kind(_) => Type::Kind,
            Static::Nil => Type::Nil,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Re,
    Nre,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    And,
    Or,
}

impl BinOp {
    /// The operator as TraceQL writes it.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Eq => "=",
            BinOp::Neq => "!=",
            BinOp::Lt => "<",
            BinOp::Lte => "<=",
            BinOp::Gt => ">",
            BinOp::Gte => ">=",
            BinOp::Re => "=~",
            BinOp::Nre => "!~",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Neq | BinOp::Lt | BinOp::Lte | BinOp::Gt | BinOp::Gte
        )
    }

    pub fn is_regex(self) -> bool {
        matches!(self, BinOp::Re | BinOp::Nre)
    }

    pub fn is_arithmetic(self) -> bool {
        matches!(
            self,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Pow
        )
    }
}

/// An expression inside `{ }` (or the argument of an aggregate, `by` or `select`).
#[derive(Clone, Debug)]
pub enum Field {
    Static(Static),
    Intrinsic(Intrinsic),
    Attribute(Scope, String),
    Binary {
        op: BinOp,
        lhs: Box<Field>,
        rhs: Box<Field>,
        /// For `=~` and `!~`: the compiled, fully anchored pattern.
        regex: Option<regex::Regex>,
    },
    Not(Box<Field>),
    Neg(Box<Field>),
}

impl Field {
    /// Whether the expression reads a field of events (then it is evaluated per event).
    pub fn reads_events(&self) -> bool {
        self.any(&|f| {
            matches!(f, Field::Attribute(Scope::Event, _))
                || matches!(f, Field::Intrinsic(i) if i.per_event())
        })
    }

    /// Whether the expression reads a field of links (then it is evaluated per link).
    pub fn reads_links(&self) -> bool {
        self.any(&|f| {
            matches!(f, Field::Attribute(Scope::Link, _))
                || matches!(f, Field::Intrinsic(i) if i.per_link())
        })
    }

    fn any(&self, pred: &dyn Fn(&Field) -> bool) -> bool {
        pred(self)
            || match self {
                Field::Binary { lhs, rhs, .. } => lhs.any(pred) || rhs.any(pred),
                Field::Not(x) | Field::Neg(x) => x.any(pred),
                _ => false,
            }
    }
}

/// Operators between spansets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpansetOp {
    And,
    Or,
    Child,
    Parent,
    Descendant,
    Ancestor,
    Sibling,
    NotChild,
    NotParent,
    NotDescendant,
    NotAncestor,
    NotSibling,
    UnionChild,
    UnionParent,
    UnionDescendant,
    UnionAncestor,
    UnionSibling,
}

/// A spanset expression: filters combined by spanset operators.
#[derive(Clone, Debug)]
pub enum SpansetExpr {
    /// `{ condition }`; `None` for `{}` (every span).
    Filter(Option<Field>),
    Op {
        op: SpansetOp,
        lhs: Box<SpansetExpr>,
        rhs: Box<SpansetExpr>,
    },
    /// A parenthesised pipeline.
    Pipeline(Box<Pipeline>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateKind {
    Count,
    Avg,
    Min,
    Max,
    Sum,
}

/// A number computed from a spanset.
#[derive(Clone, Debug)]
pub enum Scalar {
    Aggregate(AggregateKind, Option<Field>),
    Static(Static),
    Binary {
        op: BinOp,
        lhs: Box<Scalar>,
        rhs: Box<Scalar>,
    },
}

/// One step after `|`.
#[derive(Clone, Debug)]
pub enum Stage {
    /// Keeps the spans of each spanset that the expression selects.
    Spanset(SpansetExpr),
    /// Keeps the spansets for which the comparison holds.
    ScalarFilter { op: BinOp, lhs: Scalar, rhs: Scalar },
    /// Splits each spanset by the values of the fields.
    By(Vec<Field>),
    /// Adds these fields to the spans returned.
    Select(Vec<Field>),
    /// Merges all spansets into one.
    Coalesce,
}

/// A spanset expression followed by pipeline stages.
#[derive(Clone, Debug)]
pub struct Pipeline {
    pub source: SpansetExpr,
    pub stages: Vec<Stage>,
}

/// A TraceQL metrics function, the last stage of a metrics query.
#[derive(Clone, Debug)]
pub enum MetricsFn {
    /// Matching spans per second of each step.
    Rate,
    /// Matching spans per step.
    CountOverTime,
    MinOverTime(Field),
    MaxOverTime(Field),
    SumOverTime(Field),
    AvgOverTime(Field),
    /// One series per quantile (each in `[0, 1]`).
    QuantileOverTime(Field, Vec<f64>),
    /// Counts per power-of-two bucket of the field's value.
    HistogramOverTime(Field),
}

/// What follows the spanset pipeline of a metrics query: the function, its grouping and an
/// optional `topk(n)` or `bottomk(n)`.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub func: MetricsFn,
    pub by: Vec<Field>,
    /// `(true, n)` for `topk(n)`, `(false, n)` for `bottomk(n)`.
    pub keep: Option<(bool, usize)>,
}
