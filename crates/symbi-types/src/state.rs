//! The agent state machine of SPEC §3.
//!
//! There is exactly one table of allowed transitions ([`TRANSITIONS`]); everything that
//! changes an agent's state asks it, and an edge that is not in it is an
//! [`InvalidTransition`] error, never a silent no-op.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The six states an agent can be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AgentState {
    /// DSL parsed, configuration being validated.
    Initializing,
    /// Waiting for a task.
    Ready,
    /// Executing a task.
    Running,
    /// Stopped by a policy violation, preemption or resource pressure; resumable.
    Suspended,
    /// Gone for good (shutdown, manual override, cleanup).
    Terminated,
    /// Configuration invalid, or a task of the agent panicked; only cleanup
    /// (→ Terminated) remains.
    Failed,
}

/// Why a transition happens. Recorded with the transition's audit event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionCause {
    /// `(new) → Initializing`: the agent was submitted.
    Submitted,
    /// `Initializing → Ready`: the configuration is valid.
    ConfigurationValid,
    /// `Initializing → Failed`: the configuration is invalid.
    ConfigurationInvalid,
    /// `Ready → Running`: a task was assigned.
    TaskAssigned,
    /// `Running → Ready`: the task completed (successfully or with an ordinary error).
    TaskComplete,
    /// `Running → Suspended`: a denial the agent did not catch.
    PolicyViolation,
    /// `Running → Suspended`: a higher-priority task took the agent's place.
    Preempted,
    /// `Running → Suspended`: the resource manager reclaimed resources.
    ResourcePressure,
    /// `Suspended → Running`: an operator cleared the violation.
    PolicyCleared,
    /// `Suspended → Running`: resources are available again.
    ResourcesAvailable,
    /// `Suspended → Terminated`: manual override.
    ManualOverride,
    /// `Ready → Terminated`: the runtime (or an operator) shut the agent down.
    Shutdown,
    /// `Failed → Terminated`: cleanup of a failed agent.
    Cleanup,
    /// `Running → Failed`: the agent's task panicked (a bug, not an ordinary error). This
    /// edge is not in SPEC §3's table; runtime-core's acceptance requires that "an agent
    /// whose task panics goes to Failed" (see docs/runtime.md).
    TaskPanicked,
}

/// One allowed edge of the state machine. `from == None` is the creation edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// State before; `None` for a new agent.
    pub from: Option<AgentState>,
    /// State after.
    pub to: AgentState,
    /// The causes that may drive this edge.
    pub causes: &'static [TransitionCause],
}

use AgentState::*;
use TransitionCause::*;

/// Every allowed transition (SPEC §3), and no others.
pub const TRANSITIONS: &[Transition] = &[
    Transition {
        from: None,
        to: Initializing,
        causes: &[Submitted],
    },
    Transition {
        from: Some(Initializing),
        to: Ready,
        causes: &[ConfigurationValid],
    },
    Transition {
        from: Some(Initializing),
        to: Failed,
        causes: &[ConfigurationInvalid],
    },
    Transition {
        from: Some(Ready),
        to: Running,
        causes: &[TaskAssigned],
    },
    Transition {
        from: Some(Running),
        to: Ready,
        causes: &[TaskComplete],
    },
    Transition {
        from: Some(Running),
        to: Suspended,
        causes: &[PolicyViolation, Preempted, ResourcePressure],
    },
    Transition {
        from: Some(Suspended),
        to: Running,
        causes: &[PolicyCleared, ResourcesAvailable],
    },
    Transition {
        from: Some(Suspended),
        to: Terminated,
        causes: &[ManualOverride],
    },
    Transition {
        from: Some(Ready),
        to: Terminated,
        causes: &[Shutdown],
    },
    Transition {
        from: Some(Failed),
        to: Terminated,
        causes: &[Cleanup],
    },
    Transition {
        from: Some(Running),
        to: Failed,
        causes: &[TaskPanicked],
    },
];

/// An attempt to move along an edge the state machine does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid agent state transition {}{to:?} ({cause:?})", from.map(|f| format!("{f:?} → ")).unwrap_or_else(|| "(new) → ".into()))]
pub struct InvalidTransition {
    /// Current state (`None` for an agent that does not exist yet).
    pub from: Option<AgentState>,
    /// Requested state.
    pub to: AgentState,
    /// Requested cause.
    pub cause: TransitionCause,
}

impl AgentState {
    /// All six states.
    pub const ALL: [AgentState; 6] = [Initializing, Ready, Running, Suspended, Terminated, Failed];

    /// Checks the edge `from → to` with `cause` against [`TRANSITIONS`].
    ///
    /// ```
    /// use symbi_types::state::{AgentState, TransitionCause};
    /// assert!(AgentState::check(Some(AgentState::Ready), AgentState::Running, TransitionCause::TaskAssigned).is_ok());
    /// assert!(AgentState::check(Some(AgentState::Failed), AgentState::Ready, TransitionCause::ConfigurationValid).is_err());
    /// ```
    pub fn check(
        from: Option<AgentState>,
        to: AgentState,
        cause: TransitionCause,
    ) -> Result<(), InvalidTransition> {
        TRANSITIONS
            .iter()
            .any(|t| t.from == from && t.to == to && t.causes.contains(&cause))
            .then_some(())
            .ok_or(InvalidTransition { from, to, cause })
    }

    /// Whether any cause allows `self → to`.
    pub fn can_transition_to(self, to: AgentState) -> bool {
        TRANSITIONS
            .iter()
            .any(|t| t.from == Some(self) && t.to == to)
    }

    /// Terminal states never change again.
    pub fn is_terminal(self) -> bool {
        self == Terminated
    }

    /// The PascalCase spelling used by the HTTP API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Initializing => "Initializing",
            Ready => "Ready",
            Running => "Running",
            Suspended => "Suspended",
            Terminated => "Terminated",
            Failed => "Failed",
        }
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown agent state `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_outside_the_table_is_rejected() {
        let allowed: Vec<(Option<AgentState>, AgentState)> =
            TRANSITIONS.iter().map(|t| (t.from, t.to)).collect();
        let froms = std::iter::once(None).chain(AgentState::ALL.into_iter().map(Some));
        let mut forbidden = 0;
        for from in froms {
            for to in AgentState::ALL {
                let pair_allowed = allowed.contains(&(from, to));
                let any_cause_ok = [
                    Submitted,
                    ConfigurationValid,
                    ConfigurationInvalid,
                    TaskAssigned,
                    TaskComplete,
                    PolicyViolation,
                    Preempted,
                    ResourcePressure,
                    PolicyCleared,
                    ResourcesAvailable,
                    ManualOverride,
                    Shutdown,
                    Cleanup,
                    TaskPanicked,
                ]
                .into_iter()
                .any(|c| AgentState::check(from, to, c).is_ok());
                assert_eq!(pair_allowed, any_cause_ok, "{from:?} -> {to:?}");
                if !pair_allowed {
                    forbidden += 1;
                }
            }
        }
        // 7 × 6 pairs, 11 allowed.
        assert_eq!(forbidden, 42 - 11);
    }
}
