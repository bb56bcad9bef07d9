//! The stages of the request path, in order (DESIGN.md §2), and a per-request trace of what
//! each did. A stage that has no behaviour yet says so (`pass`) in the trace rather than
//! pretending; later issues replace `pass` with real work.

use keel_types::report::StageReport;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// API key → tenant (done by the server before the pipeline; recorded here).
    Authenticate,
    /// Rate limits and budgets (issue: orchestration).
    Admit,
    /// PII, secrets, prompt injection on the input (issue: policy).
    InputPolicy,
    /// Exact and semantic cache (not built yet).
    Cache,
    /// Session memory, retrieval, history fitted to a budget (issue: retrieval/context).
    Context,
    /// Resolve the requested name to ordered candidate models.
    Route,
    /// Call candidates in order until one succeeds or a non-retryable error.
    Attempts,
    /// Moderation, grounding, schema checks on the answer (issue: policy/trust).
    OutputPolicy,
    /// Serve, flag, escalate or block (issue: review).
    Decide,
    /// Assemble the answer for the client (for streams: from the first chunk to the last).
    Respond,
    /// Write the request log.
    Record,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageOutcome {
    /// The stage did real work and let the request through.
    Ok,
    /// The stage has no behaviour configured yet; the request passed untouched.
    Pass,
    /// The stage stopped the request.
    Failed,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTrace(Vec<(Stage, StageOutcome)>);

impl StageTrace {
    pub fn mark(&mut self, stage: Stage, outcome: StageOutcome) {
        self.0.push((stage, outcome));
    }

    /// The pass-through stages in request order; one call keeps the order in one place.
    pub fn pass_through(&mut self, stages: &[Stage]) {
        for s in stages {
            self.mark(*s, StageOutcome::Pass);
        }
    }

    /// The stages so far, as the response's `keel.stages` shows them.
    pub fn to_report(&self) -> Vec<StageReport> {
        self.0
            .iter()
            .map(|(s, o)| StageReport {
                stage: s.as_str().into(),
                outcome: o.as_str().into(),
            })
            .collect()
    }
}

impl Stage {
    /// The span name of the stage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authenticate => "authenticate",
            Self::Admit => "admit",
            Self::InputPolicy => "input_policy",
            Self::Cache => "cache",
            Self::Context => "context",
            Self::Route => "route",
            Self::Attempts => "attempts",
            Self::OutputPolicy => "output_policy",
            Self::Decide => "decide",
            Self::Respond => "respond",
            Self::Record => "record",
        }
    }
}

impl StageOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Pass => "pass",
            Self::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage_report_uses_the_serde_names() {
        let mut trace = StageTrace::default();
        use Stage::*;
        let all = [
            Authenticate,
            Admit,
            InputPolicy,
            Cache,
            Context,
            Route,
            Attempts,
            OutputPolicy,
            Decide,
            Respond,
            Record,
        ];
        let outcomes = [StageOutcome::Ok, StageOutcome::Pass, StageOutcome::Failed];
        for (i, s) in all.into_iter().enumerate() {
            trace.mark(s, outcomes[i % 3]);
        }
        let want: Vec<serde_json::Value> = all
            .into_iter()
            .enumerate()
            .map(|(i, s)| serde_json::json!({"stage": s, "outcome": outcomes[i % 3]}))
            .collect();
        let got = serde_json::to_value(trace.to_report()).unwrap();
        assert_eq!(got, serde_json::Value::Array(want));
    }
}
