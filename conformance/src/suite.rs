//! A suite: scenarios loaded from the built-in files or a directory,
//! filtered, and run concurrently against one target.
//!
//! Isolation: each scenario run gets its own topic prefix `{t}`, token `{u}`
//! and client-id prefix `{id}`, made from a random run nonce and the
//! scenario's index, so scenarios running at the same time (and runs
//! repeated against a long-lived broker) never see each other's messages or
//! sessions. Scenarios marked `exclusive` see the whole broker and run alone,
//! after the others.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::model::Requirement;
use crate::outcome::{Outage, ScenarioResult};
use crate::scenario::Scenario;
use crate::script::{Placeholders, ScriptError, parse_file};
use crate::target::{Carrier, Target};

/// Why a suite could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A script is wrong.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// A directory or file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The directory holds no scenario files.
    #[error("{path} holds no *.toml scenario files")]
    Empty {
        /// The directory.
        path: String,
    },
    /// Two scenarios share a name.
    #[error("{second}: scenario name {name:?} is already used at {first}")]
    Duplicate {
        /// The name.
        name: String,
        /// Where first defined.
        first: crate::model::Location,
        /// Where defined again.
        second: crate::model::Location,
    },
}

/// A loaded suite.
#[derive(Debug, Clone, Default)]
pub struct Suite {
    /// Scenarios in file order.
    pub scenarios: Vec<Scenario>,
    /// SHA-256 of each loaded file's contents, in load order.
    file_hashes: Vec<[u8; 32]>,
}

impl Suite {
    /// The built-in suite (from `fixtures/scenarios/`, embedded at build time).
    pub fn builtin() -> Result<Self, SuiteError> {
        let known = crate::spec::statement_ids();
        let files = crate::builtin::SCENARIO_FILES
            .iter()
            .map(|(name, text)| (format!("fixtures/scenarios/{name}"), (*text).to_owned()));
        Self::from_files(files, &known)
    }

    /// The cross-node scenarios (`fixtures/cross-node/`): a client on each
    /// of two nodes of a cluster, or of two bridged brokers. Kept apart
    /// from [`Suite::builtin`] because they need a second node; the toolkit
    /// adds them to the run when `--second-host` is given.
    pub fn cross_node() -> Result<Self, SuiteError> {
        let known = crate::spec::statement_ids();
        let files = crate::builtin::CROSS_NODE_FILES
            .iter()
            .map(|(name, text)| (format!("fixtures/cross-node/{name}"), (*text).to_owned()));
        Self::from_files(files, &known)
    }

    /// Every `*.toml` file in `dir` (not recursive), in name order.
    pub fn from_dir(dir: &Path) -> Result<Self, SuiteError> {
        let read_err = |source| SuiteError::Read {
            path: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(SuiteError::Empty {
                path: dir.display().to_string(),
            });
        }
        let mut files = Vec::new();
        for p in paths {
            let text = std::fs::read_to_string(&p).map_err(|source| SuiteError::Read {
                path: p.display().to_string(),
                source,
            })?;
            files.push((p.display().to_string(), text));
        }
        Self::from_files(files, &crate::spec::statement_ids())
    }

    /// Parses `(file name, contents)` pairs.
    pub fn from_files(
        files: impl IntoIterator<Item = (String, String)>,
        known: &HashSet<String>,
    ) -> Result<Self, SuiteError> {
        let mut scenarios: Vec<Scenario> = Vec::new();
        let mut file_hashes = Vec::new();
        let mut seen: HashMap<String, crate::model::Location> = HashMap::new();
        for (name, text) in files {
            file_hashes.push(Sha256::digest(text.as_bytes()).into());
            for s in parse_file(&name, &text, known)? {
                if let Some(first) = seen.get(&s.name) {
                    return Err(SuiteError::Duplicate {
                        name: s.name.clone(),
                        first: first.clone(),
                        second: s.location.clone(),
                    });
                }
                seen.insert(s.name.clone(), s.location.clone());
                scenarios.push(s);
            }
        }
        Ok(Self {
            scenarios,
            file_hashes,
        })
    }

    /// This suite followed by `more` (e.g. the built-in suite and a user's
    /// directory); a scenario name used in both is refused.
    pub fn extend(mut self, more: Suite) -> Result<Self, SuiteError> {
        for s in more.scenarios {
            if let Some(first) = self.scenarios.iter().find(|f| f.name == s.name) {
                return Err(SuiteError::Duplicate {
                    name: s.name.clone(),
                    first: first.location.clone(),
                    second: s.location.clone(),
                });
            }
            self.scenarios.push(s);
        }
        self.file_hashes.extend(more.file_hashes);
        Ok(self)
    }

    /// The suite's version: the first 16 hex digits of a SHA-256 over the
    /// contents of every scenario file loaded, in load order. The same files
    /// give the same version wherever they were read from; any change to a
    /// scenario changes it. Filtering does not change it.
    pub fn version(&self) -> String {
        let mut h = Sha256::new();
        for f in &self.file_hashes {
            h.update(f);
        }
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Keeps the scenarios `selection` selects.
    pub fn select(mut self, selection: &crate::select::Selection) -> Self {
        self.scenarios.retain(|s| selection.selects(s));
        self
    }

    /// Keeps the scenarios carrying any of `tags` (all when empty) and named
    /// in `names` (all when empty).
    pub fn filter(mut self, tags: &[String], names: &[String]) -> Self {
        self.scenarios.retain(|s| {
            (tags.is_empty() || s.tags.iter().any(|t| tags.contains(t)))
                && (names.is_empty() || names.contains(&s.name))
        });
        self
    }

    /// Names a filter mentions that no scenario has, for a clear error.
    pub fn unknown_names<'a>(&self, names: &'a [String]) -> Vec<&'a str> {
        names
            .iter()
            .filter(|n| !self.scenarios.iter().any(|s| &s.name == *n))
            .map(String::as_str)
            .collect()
    }
}

/// How to run a suite.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How many scenarios run at once.
    pub jobs: usize,
    /// The run's nonce in topics and client ids; random when `None`. Fixed
    /// only where output must be reproducible (snapshot tests).
    pub run_id: Option<String>,
    /// `--continue-after-crash`: when the broker fails the liveness probe,
    /// wait up to this long for it to answer again (a supervisor restarting
    /// it) and go on; `None` stops the run at the first failed probe.
    pub continue_after_crash: Option<Duration>,
    /// Told of each outage as it is found, before any wait for the broker
    /// to come back (the toolkit prints a line).
    pub on_outage: Option<OutageHook>,
    /// How many times each `timing` scenario runs, at once and staggered
    /// (`--timing-repeats`, 1 to [`MAX_TIMING_REPEATS`]); a failure in any
    /// repeat fails it. Other scenarios run once.
    pub timing_repeats: u32,
}

/// The most repeats a timing scenario may have: the repeat's number takes
/// two digits of the client-id prefix `{id}`.
pub const MAX_TIMING_REPEATS: u32 = 100;

/// Repeats of a timing scenario when not told otherwise: enough that a
/// broker whose close time only sometimes falls outside the window is seen
/// failing in nearly every run, few enough to keep the run short (the
/// repeats run at once).
pub const DEFAULT_TIMING_REPEATS: u32 = 3;

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            jobs: 8,
            run_id: None,
            continue_after_crash: None,
            on_outage: None,
            timing_repeats: DEFAULT_TIMING_REPEATS,
        }
    }
}

/// A callback told of each [`Outage`] when it is found.
#[derive(Clone)]
pub struct OutageHook(pub Arc<dyn Fn(&Outage) + Send + Sync>);

impl std::fmt::Debug for OutageHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutageHook")
    }
}

/// The broker target as the machine reports give it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    /// Host name or address.
    pub host: String,
    /// Plain MQTT port.
    pub port: u16,
    /// TLS port, when the run had a TLS listener.
    pub tls_port: Option<u16>,
    /// Whether TLS connections presented a client certificate.
    pub client_cert: bool,
    /// Whether the run had credentials.
    pub credentials: bool,
    /// The WebSocket URL of the main listener, when it was reached over
    /// WebSocket (`--transport ws|wss`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websocket: Option<String>,
    /// The second node's main listener, for a cross-node run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_node: Option<String>,
    /// Whether the two nodes are bridged brokers (`--second-bridged`);
    /// left out unless they are.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bridged: bool,
}

impl TargetInfo {
    /// What `t` says.
    pub fn of(t: &Target) -> Self {
        Self {
            host: t.host.clone(),
            port: t.port,
            tls_port: t.tls.as_ref().map(|t| t.port),
            client_cert: t.tls.as_ref().is_some_and(|t| t.client_cert),
            credentials: t.credentials.is_some(),
            websocket: match &t.carrier {
                Carrier::Tcp => None,
                Carrier::WebSocket(ws) => Some(ws.url(&t.host, t.port)),
            },
            second_node: t.second.as_ref().map(|s| s.target.main_listener()),
            bridged: t.bridged(),
        }
    }
}

/// The results of a run, in suite order.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The version of the harness that ran (this crate's version; the
    /// toolkit may replace it with its own, longer one).
    pub tool_version: String,
    /// [`Suite::version`] of the suite run.
    pub suite_version: String,
    /// Where the broker was, as one line.
    pub target: String,
    /// Where the broker was, field by field.
    pub broker_target: TargetInfo,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// How much every timing window was stretched (`--time-scale`; 1 when
    /// not).
    pub time_scale: f64,
    /// One result per scenario.
    pub results: Vec<ScenarioResult>,
    /// Each time the broker stopped answering the liveness probe, with the
    /// scenarios likely to blame (empty when it never did).
    pub outages: Vec<Outage>,
    /// Wall-clock time of the run.
    #[serde(rename = "duration_ms", serialize_with = "ser_millis")]
    pub duration: Duration,
}

fn ser_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
}

/// Why a scenario cannot run against this target, if it cannot.
fn skip_reason(s: &Scenario, target: &Target) -> Option<String> {
    s.requires.iter().find_map(|r| match r {
        Requirement::Tls if target.tls.is_none() => {
            Some("needs a TLS listener: pass --tls-port with --cafile or --insecure".to_owned())
        }
        Requirement::Auth if target.credentials.is_none() => Some(
            "needs credentials: pass --username/--password of a broker that refuses wrong ones"
                .to_owned(),
        ),
        Requirement::ClientCert if !target.tls.as_ref().is_some_and(|t| t.client_cert) => Some(
            "needs a client certificate: pass --cert/--key for a TLS listener that requires one"
                .to_owned(),
        ),
        Requirement::Restart if target.restart.is_none() => Some(
            "needs a way to restart the broker: pass --restart-command (e.g. \"systemctl restart mosquitto\")"
                .to_owned(),
        ),
        Requirement::SecondNode if target.second.is_none() => Some(
            "needs a second node: pass --second-host (and --second-port) of another node of the cluster, or of a broker bridged to this one"
                .to_owned(),
        ),
        Requirement::Kill if target.kill.is_none() => Some(
            "needs a way to kill and start the broker: pass --kill-command (e.g. \"docker kill b && docker start b\")"
                .to_owned(),
        ),
        _ => None,
    })
}

fn nonce() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..4)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

pub(crate) fn placeholders(run: &str, index: usize, name: &str) -> Placeholders {
    Placeholders {
        topic: format!("mqc/{run}/{name}"),
        unique: format!("{run}{index:03}"),
        client_id: format!("q{run}{index:03}"),
        iteration: 0,
    }
}

/// The placeholders of each run of scenario `s`: one set, or for a
/// `timing` scenario one per repeat, each marked `r00`, `r01`... so that
/// concurrent repeats never share a client id or topic (`{id}` grows to 11
/// characters, still within 23 with an 8-character client name).
pub(crate) fn repeat_placeholders(
    s: &Scenario,
    repeats: u32,
    base: Placeholders,
) -> Vec<Placeholders> {
    let repeats = repeats.clamp(1, MAX_TIMING_REPEATS);
    if !s.timing || repeats == 1 {
        return vec![base];
    }
    (0..repeats)
        .map(|k| Placeholders {
            topic: format!("{}/r{k:02}", base.topic),
            unique: format!("{}r{k:02}", base.unique),
            client_id: format!("{}r{k:02}", base.client_id),
            iteration: 0,
        })
        .collect()
}

/// Runs every scenario of `suite` against `target`, calling `progress` as
/// each one finishes.
///
/// At most `options.jobs` scenarios run at once; `exclusive` ones run
/// alone, after the others. The liveness probe ([`crate::liveness`]) runs
/// before the first scenario and after each one finishes; when it fails,
/// the scenarios finished since the last good probe and those running are
/// named as the likely cause (marked errors), the running ones are stopped,
/// and either the rest are marked not run or, with
/// `options.continue_after_crash`, the run waits for the broker to answer
/// again and goes on.
pub async fn run(
    suite: &Suite,
    target: &Target,
    options: &RunOptions,
    progress: impl Fn(&ScenarioResult) + Send + Sync + 'static,
) -> RunReport {
    let started = Instant::now();
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let run_id = options.run_id.clone().unwrap_or_else(nonce);
    let target = Arc::new(target.clone());
    let mut slots: Vec<Option<ScenarioResult>> = vec![None; suite.scenarios.len()];
    let mut pending = std::collections::VecDeque::new();
    let mut exclusive = Vec::new();
    for (i, s) in suite.scenarios.iter().enumerate() {
        if let Some(reason) = skip_reason(s, &target) {
            let r = ScenarioResult::skipped(s, reason);
            progress(&r);
            slots[i] = Some(r);
        } else if s.exclusive {
            exclusive.push(i);
        } else {
            pending.push_back(i);
        }
    }
    pending.extend(exclusive);
    let mut scheduler =
        crate::schedule::Scheduler::new(suite, &target, &run_id, options, &progress, slots);
    scheduler.run(pending).await;
    RunReport {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        suite_version: suite.version(),
        target: describe_target(&target),
        broker_target: TargetInfo::of(&target),
        started_at,
        time_scale: target.time_scale,
        results: scheduler.slots.into_iter().flatten().collect(),
        outages: scheduler.outages,
        duration: started.elapsed(),
    }
}

/// The target as one line for report headers.
pub fn describe_target(t: &Target) -> String {
    let mut s = t.main_listener();
    if let Some(tls) = &t.tls {
        s.push_str(&format!(" (TLS on port {}", tls.port));
        if tls.client_cert {
            s.push_str(", with a client certificate");
        }
        s.push(')');
    }
    if t.credentials.is_some() {
        s.push_str(" with credentials");
    }
    if let Some(second) = &t.second {
        s.push_str(&format!(
            ", second node {}{}",
            second.target.main_listener(),
            if second.bridged { " (bridged)" } else { "" }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(timing: bool) -> Scenario {
        let src = format!(
            "[[scenario]]\nname = \"keepalive.x\"\ndescription = \"d\"\nstatements = [\"MQTT-3.1.2-24\"]\ntags = [\"keepalive\"]\ntiming = {timing}\nsteps = [ {{ connect = \"a\", keep_alive = 1 }} ]\n"
        );
        let mut s = parse_file("keepalive.toml", &src, &crate::spec::statement_ids())
            .expect("the test scenario parses");
        s.remove(0)
    }

    #[test]
    fn only_timing_scenarios_get_one_set_of_placeholders_per_repeat() {
        let base = placeholders("ab12", 7, "keepalive.x");
        assert_eq!(
            repeat_placeholders(&scenario(false), 50, base.clone()).len(),
            1
        );
        assert_eq!(
            repeat_placeholders(&scenario(true), 1, base.clone()).len(),
            1
        );
        let repeats = repeat_placeholders(&scenario(true), 50, base.clone());
        assert_eq!(repeats.len(), 50);
        let ids: HashSet<&str> = repeats.iter().map(|p| p.client_id.as_str()).collect();
        let topics: HashSet<&str> = repeats.iter().map(|p| p.topic.as_str()).collect();
        assert_eq!(
            (ids.len(), topics.len()),
            (50, 50),
            "each repeat is isolated"
        );
        assert_eq!(repeats[49].client_id, "qab12007r49");
        assert_eq!(repeats[3].topic, "mqc/ab12/keepalive.x/r03");
        // With an 8-character client name the id stays within the 23
        // characters every server accepts [MQTT-3.1.3-5].
        assert!(repeats.iter().all(|p| p.client_id.len() + 8 <= 23));
        let capped = repeat_placeholders(&scenario(true), 1000, base);
        assert_eq!(capped.len() as u32, MAX_TIMING_REPEATS);
    }
}
