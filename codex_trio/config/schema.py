"""The configuration schema: the one truth about every setting.

`config/default.yaml` is generated from this module (`codex-trio config defaults`), so the field
descriptions below are the comments users read. A test keeps the two identical.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

RotationStrategy = Literal["least_used", "round_robin", "sticky"]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
ServiceTier = Literal["auto", "default", "flex", "fast", "priority"]


class Section(BaseModel):
    # Unknown keys are errors: a typo in local.yaml must not be silently ignored.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Address of the main listener (API + dashboard). Loopback by default; "
                                               "use 0.0.0.0 only with a strong proxy_api_key. Needs a restart.")
    port: int = Field(8080, ge=0, le=65535, description="Port of the main listener (env PORT). Needs a restart.")
    proxy_api_key: str | None = Field(None, description="Key every client must send (Authorization: Bearer, x-api-key, "
                                                        "x-goog-api-key or ?key=). Generated at first start when empty.")
    trust_proxy: bool = Field(False, description="Trust X-Forwarded-For from a reverse proxy when deciding whether a "
                                                 "dashboard visitor is local (reserved for the dashboard login).")
    graceful_shutdown_seconds: float = Field(10.0, ge=0, description="On SIGINT/SIGTERM, how long open streams may "
                                                                     "finish before they are ended with an error event.")
    tcp_user_timeout_ms: int = Field(30000, ge=1000, description="Abort a client connection whose unsent data has not "
                                                                 "moved for this long (keeps shutdown from hanging on "
                                                                 "stalled clients).")
    keep_alive_timeout_seconds: float = Field(75.0, gt=0, description="Close a client connection that has been idle "
                                                                     "between requests for this long (both listeners). "
                                                                     "Needs a listener restart.")
    header_timeout_seconds: float = Field(10.0, gt=0, description="Close a client connection whose request headers "
                                                                 "have not fully arrived this long after their first "
                                                                 "byte (slow-header clients). Needs a listener "
                                                                 "restart.")
    heartbeat_seconds: float = Field(15.0, gt=0, description="Send a keep-alive (SSE comment / ping event) after this "
                                                             "much silence on a stream; downstream WebSockets get a "
                                                             "ping frame this often.")


class ApiSettings(Section):
    base_url: str = Field("https://chatgpt.com/backend-api", description="Upstream ChatGPT backend.")
    auth_base_url: str = Field("https://auth.openai.com", description="Upstream OAuth issuer.")
    timeout_seconds: float = Field(60.0, gt=0, description="Time allowed for the upstream to answer with headers.")
    stream_idle_timeout_seconds: float = Field(300.0, gt=0, description="End a stream with an error when the upstream "
                                                                        "sends nothing for this long (the real client "
                                                                        "uses 300 s).")


class ClientSettings(Section):
    identity: Literal["codex-tui", "codex-exec", "app-server"] = Field(
        "codex-tui", description="Which real client to present upstream (profiles in config/fingerprint.yaml).")
    version: str = Field("0.169.0", description="Codex client version to present. A new release is a config change.")
    app_server_client_name: str = Field("codex_vscode", description="Client name used by the app-server identity.")
    platform: str | None = Field(None, description="OS name shown in the user agent (env CODEX_PLATFORM); empty = the "
                                                   "one pinned in config/fingerprint.yaml, consistent with the Linux "
                                                   "TLS hello.")
    arch: str | None = Field(None, description="CPU architecture shown in the user agent (env CODEX_ARCH); empty = "
                                               "the pinned one.")
    learn_versions: bool = Field(False, description="Follow the public Codex release feed and adopt each new version "
                                                    "(written to local.yaml). Off by default: a new release may also "
                                                    "change headers that only a new capture shows.")
    release_feed_url: str = Field("https://registry.npmjs.org/@openai/codex/latest",
                                  description="Where new Codex releases are learnt from (the npm package's latest "
                                              "version).")
    release_check_hours: float = Field(6.0, gt=0, description="How often the release feed is read.")


class CustomModel(Section):
    id: str
    display_name: str | None = None
    description: str | None = None
    supported_reasoning_efforts: list[ReasoningEffort] = Field(default_factory=lambda: ["low", "medium", "high"])
    default_reasoning_effort: ReasoningEffort = "medium"
    input_modalities: list[Literal["text", "image"]] = Field(default_factory=lambda: ["text"])
    output_modalities: list[Literal["text", "image"]] = Field(default_factory=lambda: ["text"])
    context_window: int | None = None
    max_context_window: int | None = None
    max_output_tokens: int | None = None


DEFAULT_ALIASES: dict[str, str] = {
    # Claude tiers → Codex, so Claude Code works with its own model names. gpt-5.5 is the classic
    # (tools[]-shaped) model every plan has in the measured 0.169.0 catalog; the tier picks the effort.
    "claude-opus-4-7": "gpt-5.5-high",
    "claude-opus-4-6": "gpt-5.5-high",
    "claude-opus-4-1": "gpt-5.5-high",
    "opus": "gpt-5.5-high",
    "claude-sonnet-4-6": "gpt-5.5",
    "claude-sonnet-4-5": "gpt-5.5",
    "sonnet": "gpt-5.5",
    "claude-haiku-4-5": "gpt-5.5-low",
    "haiku": "gpt-5.5-low",
}


class ModelSettings(Section):
    default: str = Field("gpt-5.5", description="Model used when a request names none (or an unknown one, where the "
                                                "protocol allows).")
    default_reasoning_effort: ReasoningEffort | None = Field(
        None, description="Effort when neither the request nor a model suffix sets one. Empty = the backend's default.")
    default_service_tier: ServiceTier | None = Field(None, description="Service tier when the request sets none.")
    aliases: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ALIASES),
                                    description="Client-facing model name → upstream model (suffixes like -high still "
                                                "apply).")
    custom_models: list[str | CustomModel] = Field(default_factory=list,
                                                   description="Extra model ids added to the catalog.")
    default_tools: list[str] = Field(default_factory=list, description="Hosted tools added to every request unless the "
                                                                       "client sends x-codex-default-tools: off.")
    system_prompt_strategy: Literal["instructions", "developer_inline", "system_inline"] = Field(
        "instructions", description="Where the client's system prompt goes: the instructions field, or an inline "
                                    "developer/system message.")
    images_as_markdown: bool = Field(True, description="On Chat Completions, return generated images as a markdown "
                                                       "data-URI image in the assistant content.")


class AuthSettings(Section):
    rotation_strategy: RotationStrategy = Field("least_used", description="How the pool picks an account: least_used "
                                                                          "(soonest window reset first), round_robin, "
                                                                          "sticky.")
    rate_limit_backoff_seconds: float = Field(60.0, ge=0, description="Cooldown after a 429 that carries no reset time.")
    refresh_margin_seconds: float = Field(300.0, ge=0, description="Refresh an access token this long before it "
                                                                   "expires.")
    max_concurrent_per_account: int = Field(8, ge=1, description="Requests one account may carry at once.")
    affinity_ttl_minutes: float = Field(120.0, gt=0, description="How long a conversation stays on its account.")


class TlsSettings(Section):
    proxy_url: str | None = Field(None, description="Egress proxy for upstream traffic: http://, https:// or socks5:// "
                                                    "(env HTTPS_PROXY). Accounts may have their own.")
    force_http11: bool = Field(False, description="Never use HTTP/2 upstream. The default (OpenSSL) path is "
                                                 "HTTP/1.1 already, like the real client, so this changes nothing today.")
    ca_file: str | None = Field(None, description="Extra CA certificate (PEM) to trust upstream, e.g. the simulator's.")


class QuotaSettings(Section):
    refresh_interval_minutes: float = Field(5.0, gt=0, description="How often to poll each account's usage.")
    warning_thresholds: list[int] = Field(default_factory=lambda: [80, 95],
                                          description="Used-percent levels that raise a quota warning.")
    skip_exhausted: bool = Field(True, description="Skip accounts whose cached quota says the limit is reached.")

    @field_validator("warning_thresholds")
    @classmethod
    def _percentages(cls, value: list[int]) -> list[int]:
        if any(not 0 < v <= 100 for v in value):
            raise ValueError("thresholds are percentages between 1 and 100")
        return sorted(value)


class SessionSettings(Section):
    ttl_minutes: float = Field(1440.0, gt=0, description="Dashboard login session lifetime (reserved for the dashboard "
                                                               "login).")
    cleanup_interval_minutes: float = Field(15.0, gt=0, description="How often expired sessions are removed (reserved).")


class OllamaSettings(Section):
    enabled: bool = Field(False, description="Run the Ollama-compatible listener (env OLLAMA_BRIDGE_ENABLED).")
    host: str = Field("127.0.0.1", description="Its address (env OLLAMA_BRIDGE_HOST). The Ollama API has no auth.")
    port: int = Field(11434, ge=0, le=65535, description="Its port (env OLLAMA_BRIDGE_PORT).")
    version: str = Field("0.18.3", description="Version reported by /api/version (env OLLAMA_BRIDGE_VERSION); "
                                               "codex --oss needs >= 0.13.4.")
    disable_vision: bool = Field(False, description="Do not advertise vision in /api/show "
                                                    "(env OLLAMA_BRIDGE_DISABLE_VISION).")
    allow_non_loopback: bool = Field(False, description="Allow a non-loopback host. Anyone who reaches it can use "
                                                        "your accounts without a key.")


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    request_log: bool = Field(True, description="Keep a log of recent requests for the dashboard (reserved: the "
                                                 "request log is not recorded yet).")
    request_log_size: int = Field(500, ge=0, description="How many recent requests to keep (reserved).")


class UsageStatsSettings(Section):
    enabled: bool = Field(True, description="Record token usage per account, model and key (reserved: "
                                             "today only the per-account totals in the account store exist).")
    retention_days: int = Field(30, ge=1, description="How long usage records are kept (reserved).")


class Settings(Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    client: ClientSettings = Field(default_factory=ClientSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    quota: QuotaSettings = Field(default_factory=QuotaSettings)
    session: SessionSettings = Field(default_factory=SessionSettings)
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    logs: LogSettings = Field(default_factory=LogSettings)
    usage_stats: UsageStatsSettings = Field(default_factory=UsageStatsSettings)


# Settings that only take effect when the listener is rebound.
RESTART_REQUIRED = frozenset({("server", "host"), ("server", "port")})

# Secrets are masked wherever settings are printed.
SECRET_KEYS = frozenset({("server", "proxy_api_key")})
