//! Error kinds of GRAMMAR 4.9 and the raw fault that value operations and builtins raise
//! (the interpreter adds the location and the DSL stack to make an error value).

use crate::value::Value;
use std::fmt;

/// The kind of a run-time error (GRAMMAR 4.9). A user-raised or tool-supplied kind that is
/// not one of the built-in names is [`ErrorKind::Custom`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// An operation on values of the wrong kinds.
    TypeError,
    /// An unknown name.
    NameError,
    /// A member read on null.
    NullError,
    /// An index out of range.
    IndexError,
    /// Integer overflow, division by zero, a non-finite float.
    ArithmeticError,
    /// Wrong number of arguments, unknown named argument.
    ArityError,
    /// More than 256 nested calls, or a value nested too deeply.
    StackOverflow,
    /// An action denied by policy.
    PolicyDenied,
    /// A required human approval was refused or expired.
    ApprovalDenied,
    /// A call that no tool, agent or service resolves.
    UnknownAction,
    /// A tool, service or agent reported failure.
    ActionFailed,
    /// One action exceeded its own limit.
    ActionTimeout,
    /// The demanded sandbox tier is not available.
    SandboxUnavailable,
    /// The input did not bind to the agent's parameters (never catchable: it happens
    /// before the body runs).
    InputError,
    /// A step or heap budget ran out (not catchable).
    BudgetExhausted,
    /// The running block's wall-clock limit passed (not catchable).
    Timeout,
    /// A bug in the interpreter or the host: a panic or a broken invariant (not catchable).
    InternalFault,
    /// Any other kind (`error("m", kind: "ValidationError")`, a tool's `APIError`).
    Custom(String),
}

impl ErrorKind {
    /// The kind's name.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorKind::TypeError => "TypeError",
            ErrorKind::NameError => "NameError",
            ErrorKind::NullError => "NullError",
            ErrorKind::IndexError => "IndexError",
            ErrorKind::ArithmeticError => "ArithmeticError",
            ErrorKind::ArityError => "ArityError",
            ErrorKind::StackOverflow => "StackOverflow",
            ErrorKind::PolicyDenied => "PolicyDenied",
            ErrorKind::ApprovalDenied => "ApprovalDenied",
            ErrorKind::UnknownAction => "UnknownAction",
            ErrorKind::ActionFailed => "ActionFailed",
            ErrorKind::ActionTimeout => "ActionTimeout",
            ErrorKind::SandboxUnavailable => "SandboxUnavailable",
            ErrorKind::InputError => "InputError",
            ErrorKind::BudgetExhausted => "BudgetExhausted",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::InternalFault => "InternalFault",
            ErrorKind::Custom(s) => s,
        }
    }

    /// The kind named `s` (a built-in name gives the built-in kind).
    pub fn from_name(s: &str) -> ErrorKind {
        match s {
            "TypeError" => ErrorKind::TypeError,
            "NameError" => ErrorKind::NameError,
            "NullError" => ErrorKind::NullError,
            "IndexError" => ErrorKind::IndexError,
            "ArithmeticError" => ErrorKind::ArithmeticError,
            "ArityError" => ErrorKind::ArityError,
            "StackOverflow" => ErrorKind::StackOverflow,
            "PolicyDenied" => ErrorKind::PolicyDenied,
            "ApprovalDenied" => ErrorKind::ApprovalDenied,
            "UnknownAction" => ErrorKind::UnknownAction,
            "ActionFailed" => ErrorKind::ActionFailed,
            "ActionTimeout" => ErrorKind::ActionTimeout,
            "SandboxUnavailable" => ErrorKind::SandboxUnavailable,
            "InputError" => ErrorKind::InputError,
            "BudgetExhausted" => ErrorKind::BudgetExhausted,
            "Timeout" => ErrorKind::Timeout,
            "InternalFault" => ErrorKind::InternalFault,
            other => ErrorKind::Custom(other.to_string()),
        }
    }

    /// Whether a `try`/`catch` can catch it (GRAMMAR 4.9).
    pub fn is_catchable(&self) -> bool {
        !matches!(
            self,
            ErrorKind::BudgetExhausted
                | ErrorKind::Timeout
                | ErrorKind::InternalFault
                | ErrorKind::InputError
        )
    }

    /// Whether this is one of the kinds named in GRAMMAR 4.9. A tool or a delegated agent
    /// that reports such a kind cannot pose as it: the error stays `ActionFailed` with the
    /// reported kind in `details.reported_kind`.
    pub fn is_reserved(&self) -> bool {
        !matches!(self, ErrorKind::Custom(_))
    }

    /// Whether the kind is a policy violation when it escapes an agent body (GRAMMAR 4.9:
    /// the agent moves Running → Suspended).
    pub fn is_policy_violation(&self) -> bool {
        matches!(self, ErrorKind::PolicyDenied | ErrorKind::ApprovalDenied)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error raised by a value operation or a builtin, before the interpreter gives it a
/// position and a stack.
#[derive(Clone, Debug)]
pub struct Fault {
    /// The kind.
    pub kind: ErrorKind,
    /// The message (lower-case start, no trailing period).
    pub message: String,
    /// Structured details (`details` field of the error value).
    pub details: Option<Value>,
    /// The action name, for action failures.
    pub action: Option<String>,
}

impl Fault {
    /// A fault of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Fault {
        Fault {
            kind,
            message: message.into(),
            details: None,
            action: None,
        }
    }
    /// A `TypeError`.
    pub fn type_error(message: impl Into<String>) -> Fault {
        Fault::new(ErrorKind::TypeError, message)
    }
    /// An `ArithmeticError`.
    pub fn arith(message: impl Into<String>) -> Fault {
        Fault::new(ErrorKind::ArithmeticError, message)
    }
    /// An `IndexError`.
    pub fn index(message: impl Into<String>) -> Fault {
        Fault::new(ErrorKind::IndexError, message)
    }
    /// An `ArityError`.
    pub fn arity(message: impl Into<String>) -> Fault {
        Fault::new(ErrorKind::ArityError, message)
    }
    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Fault {
        self.details = Some(details);
        self
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Result of value operations.
pub type VResult<T = Value> = Result<T, Fault>;
