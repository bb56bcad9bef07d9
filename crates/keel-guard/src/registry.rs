//! `Guard`: every configured scanner built once, every policy's rails resolved, and which
//! rails apply to a request (its tenant's policy, then its route's).

use crate::config::{BUILTIN_KINDS, GuardConfig, PolicyConfig, RailConfig, ScannerConfig};
use crate::injection::{InjectionScanner, Mlp};
use crate::leak::LeakScanner;
use crate::lists::{TopicsScanner, ToxicityScanner};
use crate::output::{ExfiltrationScanner, JsonSchemaScanner};
use crate::pii::PiiScanner;
use crate::policy::Rail;
use crate::secrets::SecretsScanner;
use crate::{GuardStage, Scanner};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A policy's rails per stage, scanners built.
#[derive(Clone, Default)]
pub struct Policy {
    pub name: String,
    pub input: Vec<Rail>,
    pub context: Vec<Rail>,
    pub output: Vec<Rail>,
    pub stream: Vec<Rail>,
    pub stream_window: usize,
    pub restore_redactions: bool,
}

impl Policy {
    pub fn rails(&self, stage: GuardStage) -> &[Rail] {
        match stage {
            GuardStage::Input => &self.input,
            GuardStage::Context => &self.context,
            GuardStage::Output => &self.output,
            GuardStage::Stream => &self.stream,
        }
    }

    /// This policy's rails followed by `then`'s, per stage (a tenant's policy, then a
    /// route's). The window is the smaller one; restoring needs both to agree.
    pub fn chain(&self, then: &Policy) -> Policy {
        let join = |a: &[Rail], b: &[Rail]| a.iter().chain(b).cloned().collect::<Vec<_>>();
        Policy {
            name: format!("{}+{}", self.name, then.name),
            input: join(&self.input, &then.input),
            context: join(&self.context, &then.context),
            output: join(&self.output, &then.output),
            stream: join(&self.stream, &then.stream),
            stream_window: self.stream_window.min(then.stream_window),
            restore_redactions: self.restore_redactions && then.restore_redactions,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
            && self.context.is_empty()
            && self.output.is_empty()
            && self.stream.is_empty()
    }
}

/// Every policy, ready to run.
#[derive(Clone, Default)]
pub struct Guard {
    policies: BTreeMap<String, Arc<Policy>>,
    tenants: BTreeMap<String, String>,
    /// Whether the injection scanners have their classifier (else heuristics only).
    pub classifier_loaded: bool,
}

impl Guard {
    /// Builds every scanner a policy uses. `mlp`: the injection classifier, if loaded. Errors
    /// name the config path (`guard.policies.strict.input[1].scanner: unknown scanner "x"`).
    pub fn build(config: &GuardConfig, mlp: Option<Arc<Mlp>>) -> Result<Self, String> {
        let mut built: BTreeMap<String, Arc<dyn Scanner>> = BTreeMap::new();
        for (name, sc) in &config.scanners {
            if BUILTIN_KINDS.contains(&name.as_str()) {
                return Err(format!(
                    "guard.scanners.{name}: the name of a built-in kind; choose another name"
                ));
            }
            let s = build_scanner(sc, mlp.clone())
                .map_err(|e| format!("guard.scanners.{name}: {e}"))?;
            built.insert(name.clone(), s);
        }
        let mut policies = BTreeMap::new();
        for (name, p) in &config.policies {
            let policy = build_policy(name, p, &mut built, &mlp)?;
            policies.insert(name.clone(), Arc::new(policy));
        }
        for (tenant, policy) in &config.tenants {
            if !policies.contains_key(policy) {
                return Err(format!(
                    "guard.tenants.{tenant}: unknown policy \"{policy}\""
                ));
            }
        }
        Ok(Self {
            policies,
            tenants: config.tenants.clone(),
            classifier_loaded: mlp.is_some(),
        })
    }

    pub fn policy(&self, name: &str) -> Option<&Arc<Policy>> {
        self.policies.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.policies.keys().map(String::as_str)
    }

    /// The rails for a request: its tenant's policy, then its route's; `None` when neither
    /// has one.
    pub fn for_request(
        &self,
        tenant: Option<&str>,
        route_policy: Option<&str>,
    ) -> Option<Arc<Policy>> {
        let t = tenant
            .and_then(|t| self.tenants.get(t))
            .and_then(|p| self.policies.get(p));
        let r = route_policy.and_then(|p| self.policies.get(p));
        match (t, r) {
            (Some(t), Some(r)) if Arc::ptr_eq(t, r) => Some(t.clone()),
            (Some(t), Some(r)) => Some(Arc::new(t.chain(r))),
            (Some(p), None) | (None, Some(p)) => Some(p.clone()),
            (None, None) => None,
        }
    }
}

fn build_policy(
    name: &str,
    p: &PolicyConfig,
    built: &mut BTreeMap<String, Arc<dyn Scanner>>,
    mlp: &Option<Arc<Mlp>>,
) -> Result<Policy, String> {
    let mut rails = |stage: &str, list: &[RailConfig]| -> Result<Vec<Rail>, String> {
        let mut out = Vec::with_capacity(list.len());
        for (i, rail) in list.iter().enumerate() {
            let path = format!("guard.policies.{name}.{stage}[{i}]");
            let scanner =
                resolve(&rail.scanner, built, mlp).map_err(|e| format!("{path}.scanner: {e}"))?;
            if !(0.0..=1.0).contains(&rail.threshold) {
                return Err(format!(
                    "{path}.threshold: must be within 0..=1, got {}",
                    rail.threshold
                ));
            }
            match (rail.action, &rail.reroute_to) {
                (crate::config::Action::Reroute, None) => {
                    return Err(format!(
                        "{path}.reroute_to: required when action = \"reroute\""
                    ));
                }
                (a, Some(_)) if a != crate::config::Action::Reroute => {
                    return Err(format!("{path}.reroute_to: only for action = \"reroute\""));
                }
                _ => {}
            }
            out.push(Rail::new(rail, scanner));
        }
        Ok(out)
    };
    let policy = Policy {
        name: name.to_owned(),
        input: rails("input", &p.input)?,
        context: rails("context", &p.context)?,
        output: rails("output", &p.output)?,
        stream: rails("stream", &p.stream)?,
        stream_window: p.stream_window.max(64),
        restore_redactions: p.restore_redactions,
    };
    Ok(policy)
}

/// A named instance, else a built-in kind with default options (built once, then shared).
fn resolve(
    name: &str,
    built: &mut BTreeMap<String, Arc<dyn Scanner>>,
    mlp: &Option<Arc<Mlp>>,
) -> Result<Arc<dyn Scanner>, String> {
    if let Some(s) = built.get(name) {
        return Ok(s.clone());
    }
    let Some(config) = ScannerConfig::builtin(name) else {
        return Err(format!(
            "unknown scanner \"{name}\" (not in [guard.scanners] and not one of {})",
            BUILTIN_KINDS.join(", ")
        ));
    };
    let s = build_scanner(&config, mlp.clone())?;
    built.insert(name.to_owned(), s.clone());
    Ok(s)
}

pub fn build_scanner(
    config: &ScannerConfig,
    mlp: Option<Arc<Mlp>>,
) -> Result<Arc<dyn Scanner>, String> {
    Ok(match config {
        ScannerConfig::Pii(c) => Arc::new(PiiScanner::new(c)?),
        ScannerConfig::Secrets(c) => Arc::new(SecretsScanner::new(c)?),
        ScannerConfig::Injection(c) => Arc::new(InjectionScanner::new(c, mlp)?),
        ScannerConfig::Topics(c) => Arc::new(TopicsScanner::new(c)?),
        ScannerConfig::Toxicity(c) => Arc::new(ToxicityScanner::new(c)?),
        ScannerConfig::Leak(c) => Arc::new(LeakScanner::new(c)?),
        ScannerConfig::JsonSchema(c) => Arc::new(JsonSchemaScanner::new(c)?),
        ScannerConfig::Exfiltration(c) => Arc::new(ExfiltrationScanner::new(c)?),
    })
}
