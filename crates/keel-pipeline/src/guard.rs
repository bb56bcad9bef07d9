//! The policy stages: a request's rails (its tenant's policy, then its route's) over the
//! caller's messages (input), retrieved passages and tool results (context) and the answer
//! (output). Redacted input values are restored in the answer when the policy says so.
//!
//! Scanners are pure and fast; the one slow thing a rail may need — the text's embedding,
//! for the injection classifier — is computed here, bounded by the rails' timeouts, and a
//! missing embedding is that rail's error (`on_error` decides).

use keel_guard::redact::RedactionMap;
use keel_guard::{Action, Guard, GuardStage, Policy, ScanInput, Verdict};
use keel_observe::drift::EmbedFn;
use keel_types::openai::{
    ChatCompletionRequest, ChatCompletionResponse, ContentPart, MessageContent, ResponseFormat,
    Role,
};
use keel_types::{ApiError, ErrorCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The guard and the embeddings model its classifier scanners use.
#[derive(Clone)]
pub struct Guarding {
    pub guard: Arc<Guard>,
    pub embed: Option<EmbedFn>,
}

impl Guarding {
    /// The guard from `[guard]`, or `None` when no policy is configured. The injection
    /// classifier loads from `[guard] injection_model`, else from the model cache if fetched;
    /// without it injection scanners use their heuristics alone (and say so at start).
    pub fn from_config(
        config: &keel_config::KeelConfig,
        catalog: &crate::catalog::Catalog,
    ) -> Result<Option<Self>, String> {
        let g = &config.guard;
        if g.policies.is_empty() {
            return Ok(None);
        }
        let path = match &g.injection_model {
            Some(p) => Some(p.clone()),
            None => Some(keel_local::fetch::jailguard_path(
                &keel_config::defaults::cache_dir(),
            ))
            .filter(|p| p.exists()),
        };
        let mlp = match path {
            Some(p) => match keel_guard::injection::Mlp::load(&p) {
                Ok(m) => Some(Arc::new(m)),
                // A configured path that does not load is a start error; the cache is optional.
                Err(e) if g.injection_model.is_some() => {
                    return Err(format!("guard.injection_model: {e}"));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "injection classifier not loaded; heuristics only");
                    None
                }
            },
            None => {
                tracing::warn!(
                    "injection classifier weights not found (run `keel models fetch`); \
                     injection scanners use heuristics only"
                );
                None
            }
        };
        let guard = Guard::build(g, mlp)?;
        let model = g
            .embedding_model
            .clone()
            .unwrap_or_else(|| config.retrieval.embedding_model.clone());
        let embed = crate::runtime::embed_fn(catalog, &model).ok();
        Ok(Some(Self {
            guard: Arc::new(guard),
            embed,
        }))
    }

    /// The request's policy state, or `None` when neither its tenant nor its route has one.
    pub fn start(&self, tenant: Option<&str>, route_policy: Option<&str>) -> Option<GuardState> {
        let policy = self.guard.for_request(tenant, route_policy)?;
        Some(GuardState {
            policy,
            embed: self.embed.clone(),
            redactions: RedactionMap::default(),
            checks: Vec::new(),
            action: Action::Allow,
            escalated: false,
            quarantined: Vec::new(),
            reroute: None,
            reasked: false,
        })
    }

    /// One text through one policy's rails of `stage` (`POST /v1/guard/check`).
    pub async fn check(&self, policy: &Policy, stage: GuardStage, text: &str) -> Verdict {
        check_text(policy, self.embed.as_ref(), stage, text, None).await
    }
}

/// One request's policy state across its stages.
pub struct GuardState {
    pub policy: Arc<Policy>,
    embed: Option<EmbedFn>,
    pub redactions: RedactionMap,
    /// Every checked text that triggered a rail, for `keel.policy` and the trace.
    checks: Vec<Value>,
    /// The strongest action taken.
    pub action: Action,
    pub escalated: bool,
    quarantined: Vec<Value>,
    /// An input rail asked for another route.
    pub reroute: Option<String>,
    /// The answer broke the request's JSON schema and the model was asked once more.
    pub reasked: bool,
}

/// Runs `stage`'s rails over `text`, computing its embedding first when a rail needs it.
pub(crate) async fn check_text(
    policy: &Policy,
    embed: Option<&EmbedFn>,
    stage: GuardStage,
    text: &str,
    system_prompt: Option<&str>,
) -> Verdict {
    let rails = policy.rails(stage);
    if rails.is_empty() {
        return Verdict::allow(stage);
    }
    let embedding = match (keel_guard::policy::embedding_need(rails), embed) {
        (Some(limit), Some(embed)) => embedding(embed, text, limit).await,
        _ => None,
    };
    let input = ScanInput {
        text,
        stage,
        system_prompt,
        embedding: embedding.as_deref(),
        system_prompt_embedding: None,
    };
    keel_guard::evaluate(rails, &input)
}

/// The text's embedding, or `None` if it failed or took longer than `limit`.
async fn embedding(embed: &EmbedFn, text: &str, limit: Option<Duration>) -> Option<Vec<f32>> {
    let call = embed(vec![text.to_owned()]);
    let result = match limit {
        Some(limit) => tokio::time::timeout(limit, call).await.ok()?,
        None => call.await,
    };
    match result {
        Ok(mut v) if v.len() == 1 => v.pop().map(keel_retrieval::embed::normalise),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "guard: embedding failed");
            None
        }
    }
}

/// One rail's result as JSON. `text`: the scanned text, to include each finding's matched
/// span — only for the caller's own text (`POST /v1/guard/check`), never in `keel.policy` or
/// the trace.
pub fn rail_json(r: &keel_guard::RailResult, text: Option<&str>) -> Value {
    let findings: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let mut v = json!({"kind": f.kind, "start": f.start, "end": f.end, "score": f.score});
            if let Some(t) = text {
                v["text"] = json!(t.get(f.start..f.end).unwrap_or_default());
            }
            v
        })
        .collect();
    json!({
        "scanner": r.scanner,
        "kind": r.kind,
        "score": r.score,
        "threshold": r.threshold,
        "triggered": r.triggered,
        "action": r.action,
        "error": r.error,
        "micros": r.micros,
        "findings": findings,
    })
}

/// A verdict as `keel.policy` and the trace show it: rails that scored or fired, their
/// findings as kinds and offsets (never the matched text).
fn summary(target: &str, v: &Verdict) -> Value {
    let rails: Vec<Value> = v
        .rails
        .iter()
        .filter(|r| r.triggered || r.score > 0.0 || r.error.is_some())
        .map(|r| rail_json(r, None))
        .collect();
    json!({"stage": v.stage, "target": target, "action": v.action, "rails": rails})
}

pub fn blocked(policy: &str, target: &str, v: &Verdict) -> ApiError {
    ApiError::new(
        ErrorCode::PolicyViolation,
        format!(
            "blocked by policy \"{policy}\" ({} rails): {}",
            v.stage.as_str(),
            v.reason()
        ),
    )
    .with_param(target.to_owned())
}

impl GuardState {
    fn note(&mut self, target: &str, v: &Verdict) {
        if v.action > self.action {
            self.action = v.action;
        }
        self.escalated |= v.escalated();
        if v.action != Action::Allow || v.rails.iter().any(|r| r.error.is_some()) {
            self.checks.push(summary(target, v));
        }
    }

    async fn check(&self, stage: GuardStage, text: &str, system: Option<&str>) -> Verdict {
        check_text(&self.policy, self.embed.as_ref(), stage, text, system).await
    }

    /// The input stage: user messages through the input rails, tool results through the
    /// context rails. Redacts in place; a block is the error; a reroute is remembered.
    pub async fn input(&mut self, req: &mut ChatCompletionRequest) -> Result<(), ApiError> {
        for i in 0..req.messages.len() {
            let stage = match req.messages[i].role {
                Role::User => GuardStage::Input,
                Role::Tool => GuardStage::Context,
                _ => continue,
            };
            if self.policy.rails(stage).is_empty() {
                continue;
            }
            for (path, text) in texts(&req.messages[i].content, i) {
                let v = self.check(stage, &text, None).await;
                self.note(&path, &v);
                match (stage, v.action) {
                    (GuardStage::Input, Action::Block) => {
                        return Err(blocked(&self.policy.name, &path, &v));
                    }
                    (GuardStage::Context, Action::Block) => {
                        // A tool result that carries an injection is quarantined, not sent.
                        self.quarantined
                            .push(json!({"target": path, "reason": v.reason()}));
                        replace(&mut req.messages[i].content, &path, QUARANTINED);
                    }
                    (_, Action::Reroute) => self.reroute = v.reroute_to.clone(),
                    _ => {}
                }
                let found = v.redactions();
                if !found.is_empty() {
                    let redacted = self.redactions.redact(&text, &found);
                    replace(&mut req.messages[i].content, &path, &redacted);
                }
            }
        }
        Ok(())
    }

    /// Retrieved passages through the context rails: `true` keeps a passage. A dropped
    /// passage is listed in `keel.policy.quarantined`.
    pub async fn passage(&mut self, id: &str, text: &str) -> bool {
        if self.policy.context.is_empty() {
            return true;
        }
        let v = self.check(GuardStage::Context, text, None).await;
        let target = format!("passage:{id}");
        self.note(&target, &v);
        if v.action == Action::Block {
            self.quarantined
                .push(json!({"target": target, "reason": v.reason()}));
            return false;
        }
        true
    }

    /// The output stage on a whole answer: a block is the error; redactions apply to the
    /// answer; then the caller's own redacted values come back (if the policy restores).
    pub async fn output(
        &mut self,
        req: &ChatCompletionRequest,
        resp: &mut ChatCompletionResponse,
    ) -> Result<(), ApiError> {
        let system = system_prompt(req);
        for (i, choice) in resp.choices.iter_mut().enumerate() {
            let Some(text) = choice.message.content.clone() else {
                continue;
            };
            let path = format!("choices[{i}].message.content");
            let mut v = self
                .check(GuardStage::Output, &text, system.as_deref())
                .await;
            let violations = request_schema(req)
                .and_then(|schema| schema_rail(&self.policy, schema, &text, &mut v));
            self.note(&path, &v);
            if v.action == Action::Block {
                let mut e = blocked(&self.policy.name, &path, &v);
                if let Some(list) = violations {
                    e.message = format!("{}; schema violations: {}", e.message, list.join("; "));
                }
                return Err(e);
            }
            let found = v.redactions();
            let mut out = if found.is_empty() {
                text
            } else {
                RedactionMap::default().redact(&text, &found)
            };
            if self.policy.restore_redactions && !self.redactions.is_empty() {
                out = self.redactions.restore(&out);
            }
            choice.message.content = Some(out);
        }
        Ok(())
    }

    /// Schema violations of the first answer, when the request asked for a JSON schema and
    /// the policy has a `json_schema` output rail: the pipeline re-asks once with them.
    pub fn schema_violations(
        &self,
        req: &ChatCompletionRequest,
        resp: &ChatCompletionResponse,
    ) -> Option<Vec<String>> {
        let schema = request_schema(req)?;
        if !self
            .policy
            .output
            .iter()
            .any(|r| r.scanner.kind() == "json_schema")
        {
            return None;
        }
        let text = resp.choices.first()?.message.content.as_deref()?;
        keel_guard::output::JsonSchemaScanner::validate(schema, text).err()
    }

    /// `keel.policy`: what the rails did to this request.
    pub fn report(&self) -> Value {
        json!({
            "policy": self.policy.name,
            "action": self.action,
            "escalated": self.escalated,
            "redacted": self.redactions.len(),
            "quarantined": self.quarantined,
            "schema_reasked": self.reasked,
            "checks": self.checks,
        })
    }

    /// The trace's policy content: every triggered check.
    pub fn trace_checks(&self) -> Vec<Value> {
        self.checks.clone()
    }
}

/// The request once more, with the first answer and what was wrong with it.
pub fn reask_request(
    req: &ChatCompletionRequest,
    resp: &ChatCompletionResponse,
    violations: &[String],
) -> ChatCompletionRequest {
    let mut again = req.clone();
    let answer = (resp.choices.first())
        .and_then(|c| c.message.content.clone())
        .unwrap_or_default();
    again.messages.push(keel_types::openai::ChatMessage::text(
        Role::Assistant,
        answer,
    ));
    let list = violations.join("\n- ");
    again.messages.push(keel_types::openai::ChatMessage::text(
        Role::User,
        format!(
            "Your answer does not match the required JSON schema:\n- {list}\nReply with only \
             the corrected JSON."
        ),
    ));
    again
}

/// What replaces a quarantined tool result.
pub const QUARANTINED: &str =
    "[keel: this tool result was withheld because a policy rail flagged it as unsafe]";

/// A message's text pieces with their request paths (`messages[2].content`,
/// `messages[2].content[1].text`).
fn texts(content: &Option<MessageContent>, i: usize) -> Vec<(String, String)> {
    match content {
        None => Vec::new(),
        Some(MessageContent::Text(s)) => vec![(format!("messages[{i}].content"), s.clone())],
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .enumerate()
            .filter_map(|(j, p)| match p {
                ContentPart::Text { text } => {
                    Some((format!("messages[{i}].content[{j}].text"), text.clone()))
                }
                _ => None,
            })
            .collect(),
    }
}

fn replace(content: &mut Option<MessageContent>, path: &str, with: &str) {
    match content {
        Some(MessageContent::Text(s)) => *s = with.to_owned(),
        Some(MessageContent::Parts(parts)) => {
            for (j, p) in parts.iter_mut().enumerate() {
                if let ContentPart::Text { text } = p
                    && path.ends_with(&format!("content[{j}].text"))
                {
                    *text = with.to_owned();
                }
            }
        }
        None => {}
    }
}

pub fn system_prompt(req: &ChatCompletionRequest) -> Option<String> {
    let s: Vec<String> = req
        .messages
        .iter()
        .filter(|m| matches!(m.role, Role::System | Role::Developer))
        .map(|m| m.text_content())
        .collect();
    (!s.is_empty()).then(|| s.join("\n"))
}

fn request_schema(req: &ChatCompletionRequest) -> Option<&Value> {
    match &req.response_format {
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            json_schema.get("schema").or(Some(json_schema))
        }
        _ => None,
    }
}

/// A `json_schema` output rail also checks the request's own schema: a violation scores 1.
/// Returns the violations when there are some.
fn schema_rail(
    policy: &Policy,
    schema: &Value,
    text: &str,
    v: &mut Verdict,
) -> Option<Vec<String>> {
    let rail = policy
        .output
        .iter()
        .find(|r| r.scanner.kind() == "json_schema")?;
    let violations = keel_guard::output::JsonSchemaScanner::validate(schema, text).err()?;
    v.rails.push(keel_guard::RailResult {
        scanner: rail.scanner_name.clone(),
        kind: "json_schema",
        score: 1.0,
        threshold: rail.threshold,
        triggered: true,
        action: rail.action,
        error: None,
        findings: vec![keel_guard::Finding::new(
            "json_schema.violation",
            0,
            text.len(),
            1.0,
        )],
        micros: 0,
    });
    if rail.action > v.action {
        v.action = rail.action;
        if rail.action == Action::Block {
            v.decided_by = Some(rail.scanner_name.clone());
        }
    }
    Some(violations)
}
