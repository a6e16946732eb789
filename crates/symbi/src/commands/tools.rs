//! `symbi tools …`: command tools (manifests in the tools directory) and their sandbox
//! images, and the tools of the configured MCP servers with their SchemaPin verification.
//! Each subcommand is one variant and one function.

use super::Globals;
use crate::cli::Format;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use symbi_sandbox::{RunRequest, Sandbox, SandboxConfig, SandboxError, ToolManifest, ToolRegistry};
use symbi_types::SandboxTier;

/// `symbi tools …`.
#[derive(Subcommand, Debug)]
pub enum ToolsCommand {
    /// List the command tools of the tools directory.
    List(ListArgs),
    /// Show one tool's manifest: schema, command template, tier, limits.
    Show(ShowArgs),
    /// Run a tool in its sandbox tier with a JSON input and print the result.
    Run(RunArgs),
    /// Check every manifest of a directory; errors are printed as file:line:column.
    Validate(ValidateArgs),
    /// Build the sandbox images locally (no registry): busybox (scratch + busybox-static)
    /// and debian (debootstrap minbase + jq), tagged by content digest and recorded under
    /// `<data dir>/images/`.
    BuildImages(BuildImagesArgs),
    /// Connect to an MCP server, verify each tool's SchemaPin signature (pinning the
    /// publisher's key on first use) and print each tool's status. Exit code 1 when a tool
    /// is not verified (unless verification is disabled for the server).
    Verify(VerifyArgs),
}

/// Where tools come from.
#[derive(Args, Debug, Clone)]
pub struct ToolsDirArg {
    /// Tools directory (default: `[sandbox] tools_dir`, else `<data dir>/tools`).
    #[arg(long, value_name = "DIR")]
    pub tools_dir: Option<PathBuf>,
}

/// `symbi tools list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub dir: ToolsDirArg,
    /// Do not connect to the configured MCP servers (list command tools only).
    #[arg(long)]
    pub no_mcp: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `symbi tools show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Tool name.
    pub name: String,
    #[command(flatten)]
    pub dir: ToolsDirArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `symbi tools run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Tool name.
    pub name: String,
    /// The input object as JSON.
    #[arg(long, value_name = "JSON")]
    pub input: String,
    /// Minimum tier (Tier1/docker, Tier2/gvisor). Like `with sandbox`, it can only raise
    /// the tier chosen by risk assessment and `[security] default_sandbox_tier`.
    #[arg(long, value_name = "TIER")]
    pub tier: Option<String>,
    #[command(flatten)]
    pub dir: ToolsDirArg,
    /// Output format: text prints the tool's output; json prints the whole outcome.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `symbi tools validate`.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Directory of manifests.
    pub dir: PathBuf,
}

/// `symbi tools verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// MCP server name (`[[mcp.servers]]` or `MCP_SERVER_DISCOVERY`).
    pub server: String,
    /// Accept the publisher's current key: forget the pinned key first (an explicit
    /// operator decision after a deliberate key rotation).
    #[arg(long)]
    pub repin: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `symbi tools build-images`.
#[derive(Args, Debug)]
pub struct BuildImagesArgs {
    /// Build only this image (busybox or debian).
    #[arg(long)]
    pub only: Option<String>,
}

pub fn run(g: &Globals, cmd: ToolsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ToolsCommand::List(a) => list(g, a),
        ToolsCommand::Show(a) => show(g, a),
        ToolsCommand::Run(a) => run_tool(g, a),
        ToolsCommand::Validate(a) => validate(a),
        ToolsCommand::BuildImages(a) => build_images(g, a),
        ToolsCommand::Verify(a) => super::mcp_tools::verify(g, a),
    }
}

fn tools_dir(g: &Globals, arg: &ToolsDirArg) -> anyhow::Result<PathBuf> {
    if let Some(d) = &arg.tools_dir {
        return Ok(d.clone());
    }
    let loaded = g.load(None)?;
    Ok(loaded
        .config
        .under_data_dir(loaded.config.sandbox.tools_dir.as_deref(), "tools"))
}

fn load_registry(dir: &Path) -> anyhow::Result<ToolRegistry> {
    ToolRegistry::load(dir).map_err(|e| {
        eprintln!("{e}");
        anyhow::Error::new(crate::exit::AlreadyReported)
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn list(g: &Globals, a: ListArgs) -> anyhow::Result<ExitCode> {
    let dir = tools_dir(g, &a.dir)?;
    let reg = load_registry(&dir)?;
    let mcp = if a.no_mcp {
        None
    } else {
        super::mcp_tools::collect(g)?
    };
    match a.format {
        Format::Json => {
            let mut items: Vec<_> = reg
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name, "kind": "command", "description": t.description,
                        "category": t.category, "image": t.image,
                        "tier": t.min_tier.map(|t| t.to_string()), "path": t.path,
                    })
                })
                .collect();
            if let Some(m) = &mcp {
                items.extend(m.json_items());
            }
            println!("{}", serde_json::to_string_pretty(&items)?);
        }
        Format::Text => {
            if reg.is_empty() {
                println!("no command tools in {}", dir.display());
            }
            for t in reg.iter() {
                let tier = t
                    .min_tier
                    .map(|t| format!(" (min {t})"))
                    .unwrap_or_default();
                println!("{:<20} command  {}{tier}", t.name, t.description);
            }
            if let Some(m) = &mcp {
                m.print_text();
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn find<'r>(reg: &'r ToolRegistry, name: &str, dir: &Path) -> anyhow::Result<&'r ToolManifest> {
    reg.get(name)
        .map(|t| t.as_ref())
        .ok_or_else(|| crate::exit::usage(format!("no tool `{name}` in {}", dir.display())))
}

fn show(g: &Globals, a: ShowArgs) -> anyhow::Result<ExitCode> {
    let dir = tools_dir(g, &a.dir)?;
    let reg = load_registry(&dir)?;
    let t = find(&reg, &a.name, &dir)?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(t)?),
        Format::Text => {
            println!("name:         {}", t.name);
            println!("description:  {}", t.description);
            println!(
                "file:         {} (sha256 {})",
                t.path.display(),
                &t.digest[..16]
            );
            println!("category:     {}", t.category);
            println!("image:        {}", t.image);
            println!("command:      {}", serde_json::to_string(&t.command)?);
            if let Some(s) = &t.stdin {
                println!("stdin:        {}", serde_json::to_string(s)?);
            }
            println!("output:       {:?}", t.output);
            println!(
                "min tier:     {}",
                t.min_tier
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "(risk assessment)".into())
            );
            println!(
                "network:      {}",
                if t.network {
                    "needed (never available in a sandbox on this host)"
                } else {
                    "none"
                }
            );
            if !t.capabilities.is_empty() {
                println!("capabilities: {}", t.capabilities.join(", "));
            }
            println!("limits:       {}", serde_json::to_string(&t.limits)?);
            println!("risk:         {}", serde_json::to_string(&t.risk)?);
            println!(
                "input schema: {}",
                serde_json::to_string_pretty(&t.input_schema)?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_tool(g: &Globals, a: RunArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    let dir = match &a.dir.tools_dir {
        Some(d) => d.clone(),
        None => loaded
            .config
            .under_data_dir(loaded.config.sandbox.tools_dir.as_deref(), "tools"),
    };
    let reg = load_registry(&dir)?;
    let tool = find(&reg, &a.name, &dir)?;
    let input: serde_json::Value = serde_json::from_str(&a.input)
        .map_err(|e| crate::exit::usage(format!("--input is not JSON: {e}")))?;
    let tier = a
        .tier
        .as_deref()
        .map(|t| t.parse::<SandboxTier>())
        .transpose()
        .map_err(crate::exit::usage)?;
    let sandbox = Sandbox::new(SandboxConfig::from_config(
        &loaded.config,
        loaded.data_dir(),
    ))?;
    let req = RunRequest {
        agent_min_tier: tier,
        ..RunRequest::default()
    };
    let rt = runtime()?;
    match rt.block_on(sandbox.run_tool(tool, &input, &req)) {
        Ok(outcome) => {
            match a.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&outcome)?),
                Format::Text => {
                    match &outcome.output {
                        symbi_sandbox::ToolOutput::Text(t) => print!("{t}"),
                        symbi_sandbox::ToolOutput::Json(v) => println!("{v}"),
                    }
                    eprintln!(
                        "[{} in {}, {:.0} ms{}]",
                        outcome.tool,
                        outcome.selection.tier,
                        outcome.duration.as_secs_f64() * 1000.0,
                        if outcome.stdout_truncated {
                            ", output truncated at the cap"
                        } else {
                            ""
                        }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            report_error(&e, a.format)?;
            Ok(ExitCode::from(1))
        }
    }
}

fn report_error(e: &SandboxError, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "error": { "kind": e.dsl_kind(), "reported_kind": e.reported_kind(), "message": e.to_string() }
            }))?
        ),
        Format::Text => {
            let kind = match e.reported_kind() {
                Some(k) => format!("{} ({k})", e.dsl_kind()),
                None => e.dsl_kind().to_string(),
            };
            eprintln!("error: {kind}: {e}");
        }
    }
    Ok(())
}

fn validate(a: ValidateArgs) -> anyhow::Result<ExitCode> {
    if !a.dir.is_dir() {
        return Err(crate::exit::usage(format!(
            "{} is not a directory",
            a.dir.display()
        )));
    }
    let reg = load_registry(&a.dir)?;
    println!("{}: {} tool manifest(s) ok", a.dir.display(), reg.len());
    Ok(ExitCode::SUCCESS)
}

fn build_images(g: &Globals, a: BuildImagesArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    let names: Vec<&str> = match a.only.as_deref() {
        None => symbi_sandbox::manifest::KNOWN_IMAGES.to_vec(),
        Some(n) if symbi_sandbox::manifest::KNOWN_IMAGES.contains(&n) => vec![n],
        Some(n) => {
            return Err(crate::exit::usage(format!(
                "unknown image `{n}` (known: busybox, debian)"
            )));
        }
    };
    let sandbox = Sandbox::new(SandboxConfig::from_config(
        &loaded.config,
        loaded.data_dir(),
    ))?;
    let docker = sandbox.docker()?;
    let rt = runtime()?;
    let mut failed = false;
    for name in names {
        eprintln!("building {name} …");
        match rt.block_on(sandbox.images().build(&docker, name)) {
            Ok(r) => println!(
                "{name}: {} ({}) recorded in {}",
                r.reference,
                r.image_id,
                sandbox.images().records_dir.display()
            ),
            Err(e) => {
                eprintln!("error: {name}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
