"""The configuration schema: the one truth about every setting.

`config/default.yaml` is generated from this module (`codex-trio config defaults`), so the field
descriptions below are the comments users read. A test keeps the two identical.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .values import (MAX_SOCKET_TIMEOUT_MS, ApiKey, CaFile, Host, HttpUrl, ModelName, ProxyUrl, Text, Version,
                     WebOrigin, comma_separated)

RotationStrategy = Literal["least_used", "round_robin", "sticky"]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
ServiceTier = Literal["auto", "default", "flex", "fast", "priority"]
HostedTool = Literal["web_search", "image_generation"]


class Section(BaseModel):
    # Unknown keys are errors: a typo in local.yaml must not be silently ignored. NaN and infinity are no
    # durations (NaN makes trio's timeouts raise; JSON has neither).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ServerSettings(Section):
    host: Host = Field("127.0.0.1", description="Address of the main listener (API + dashboard). Loopback by default; "
                                                "use 0.0.0.0 only with a strong proxy_api_key.")
    port: int = Field(8080, ge=0, le=65535, description="Port of the main listener (env PORT).")
    proxy_api_key: ApiKey | None = Field(
        None, description="Key every client must send (Authorization: Bearer, x-api-key, x-goog-api-key or ?key=). "
                          "Generated at first start when empty.")
    trust_proxy: bool = Field(False, description="Trust X-Forwarded-For from a reverse proxy when deciding whether a "
                                                 "dashboard visitor is local (reserved for the dashboard login).")
    graceful_shutdown_seconds: float = Field(10.0, ge=0, description="On SIGINT/SIGTERM, how long open streams may "
                                                                     "finish before they are ended with an error event.")
    tcp_user_timeout_ms: int = Field(
        30000, ge=1000, le=MAX_SOCKET_TIMEOUT_MS,
        description="Abort a client connection whose unsent data has not moved for this long (keeps shutdown from "
                    "hanging on stalled clients).")
    keep_alive_timeout_seconds: float = Field(75.0, gt=0, description="Close a client connection that has been idle "
                                                                     "between requests for this long (both listeners).")
    header_timeout_seconds: float = Field(10.0, gt=0, description="Close a client connection whose request headers "
                                                                 "have not fully arrived this long after their first "
                                                                 "byte (slow-header clients).")
    heartbeat_seconds: float = Field(15.0, gt=0, description="Send a keep-alive (SSE comment / ping event) after this "
                                                             "much silence on a stream; downstream WebSockets get a "
                                                             "ping frame this often.")
    max_upload_file_mb: int = Field(25, ge=1, le=90, description="Largest file a multipart upload may carry, in MiB (audio "
                                                                 "for /v1/audio/transcriptions, images for "
                                                                 "/v1/images/edits); a larger one is refused "
                                                                 "with a 413 as soon as it passes the limit.")


class ApiSettings(Section):
    base_url: HttpUrl = Field("https://chatgpt.com/backend-api", description="Upstream ChatGPT backend.")
    auth_base_url: HttpUrl = Field("https://auth.openai.com", description="Upstream OAuth issuer.")
    timeout_seconds: float = Field(60.0, gt=0, description="Time allowed for the upstream to answer with headers.")
    stream_idle_timeout_seconds: float = Field(300.0, gt=0, description="End a stream with an error when the upstream "
                                                                        "sends nothing for this long (the real client "
                                                                        "uses 300 s).")


class ClientSettings(Section):
    identity: Literal["codex-tui", "codex-exec", "app-server"] = Field(
        "codex-tui", description="Which real client to present upstream (profiles in config/fingerprint.yaml).")
    version: Version = Field("0.171.0", description="Codex release to present: one with a verified profile in "
                                                    "config/fingerprint.yaml (0.169.0, 0.171.0). Any other version "
                                                    "presents the newest verified release (doctor says so).")
    app_server_client_name: Text = Field("codex_vscode", description="Client name used by the app-server identity.")
    platform: Text | None = Field(None, description="OS name shown in the user agent (env CODEX_PLATFORM); empty = the "
                                                    "one pinned in config/fingerprint.yaml, consistent with the Linux "
                                                    "TLS hello.")
    arch: Text | None = Field(None, description="CPU architecture shown in the user agent (env CODEX_ARCH); empty = "
                                                "the pinned one.")
    learn_versions: bool = Field(False, description="Follow the public Codex release feed and adopt a newer release "
                                                    "when this gateway ships a verified profile for it (written to "
                                                    "local.yaml). A release without one is reported (log, doctor, "
                                                    "GET /admin/release-watch), never adopted.")
    release_feed_url: HttpUrl = Field("https://registry.npmjs.org/@openai/codex/latest",
                                  description="Where new Codex releases are learnt from (the npm package's latest "
                                              "version).")
    release_check_hours: float = Field(6.0, gt=0, description="How often the release feed is read.")


class CustomModel(Section):
    id: ModelName
    display_name: str | None = None
    description: str | None = None
    supported_reasoning_efforts: list[ReasoningEffort] = Field(default_factory=lambda: ["low", "medium", "high"])
    default_reasoning_effort: ReasoningEffort = "medium"
    input_modalities: list[Literal["text", "image"]] = Field(default_factory=lambda: ["text"])
    output_modalities: list[Literal["text", "image"]] = Field(default_factory=lambda: ["text"])
    context_window: int | None = Field(None, gt=0)  # shown to clients (Ollama's context_length): never <= 0
    max_context_window: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)


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
    default: ModelName = Field("gpt-5.5", description="Model used when a request names none (or an unknown one, "
                                                      "where the protocol allows).")
    default_reasoning_effort: ReasoningEffort | None = Field(
        None, description="Effort when neither the request nor a model suffix sets one. Empty = the backend's default.")
    default_service_tier: ServiceTier | None = Field(None, description="Service tier when the request sets none.")
    aliases: dict[ModelName, ModelName] = Field(
        default_factory=lambda: dict(DEFAULT_ALIASES),
        description="Client-facing model name → upstream model (suffixes like -high still apply).")
    custom_models: list[ModelName | CustomModel] = Field(default_factory=list,
                                                         description="Extra model ids added to the catalog.")
    # Only the hosted tools the Codex backend takes: any other name would be sent upstream in every request
    # and refused there.
    default_tools: list[HostedTool] = Field(
        default_factory=list, description="Hosted tools (web_search, image_generation) added to every request unless "
                                          "the client sends x-codex-default-tools: off.")
    system_prompt_strategy: Literal["instructions", "developer_inline", "system_inline"] = Field(
        "instructions", description="Where the client's system prompt goes: the instructions field, or an inline "
                                    "developer/system message.")
    images_as_markdown: bool = Field(True, description="On Chat Completions and Anthropic Messages, return generated "
                                                       "images as a markdown data-URI image in the assistant text "
                                                       "(off: as a call of an image_generation tool, on Anthropic "
                                                       "only when the client declared one).")

    @field_validator("aliases")
    @classmethod
    def _aliases_resolve(cls, aliases: dict[str, str]) -> dict[str, str]:
        # An alias cycle (a -> b -> a, also through suffixes: a -> b-high, b -> a) would fail every request
        # naming it; the router's own resolution finds it, so the rule lives in one place.
        from ..errors import GatewayError
        from ..routing.models import ModelRouter

        router = ModelRouter("unused", aliases=aliases)
        for name in aliases:
            try:
                router.resolve(name, fallback_to_default=True)
            except GatewayError as error:
                raise ValueError(error.message) from None
        return aliases


class AuthSettings(Section):
    rotation_strategy: RotationStrategy = Field("least_used", description="How the pool picks an account: least_used "
                                                                          "(soonest known window reset, then fewest "
                                                                          "requests, then least recently used), "
                                                                          "round_robin, sticky.")
    rate_limit_backoff_seconds: float = Field(60.0, ge=0, description="Cooldown after a 429 that carries no reset time.")
    refresh_margin_seconds: float = Field(300.0, ge=0, description="Refresh an access token this long before it "
                                                                   "expires.")
    max_concurrent_per_account: int = Field(8, ge=1, description="Requests one account may carry at once.")
    max_refreshes_in_flight: int = Field(4, ge=1, le=64, description="Token refreshes sent at once, across all "
                                         "accounts. A crash can lose at most this many accounts (a refresh token "
                                         "is single-use), so keep it small.")
    affinity_ttl_minutes: float = Field(120.0, gt=0, description="How long a conversation stays on its account.")


class TlsSettings(Section):
    proxy_url: ProxyUrl | None = Field(None, description="Egress proxy for upstream traffic: http://, https:// or "
                                                         "socks5:// (env HTTPS_PROXY). Accounts may have their own.")
    force_http11: bool = Field(False, description="Never use HTTP/2 upstream. The default (OpenSSL) path is "
                                                 "HTTP/1.1 already, like the real client, so this changes nothing today.")
    ca_file: CaFile | None = Field(None, description="Extra CA certificate (PEM) to trust upstream, e.g. the "
                                                     "simulator's.")
    resolve: dict[str, str] = Field(default_factory=dict,
                                    description="Connect to these host names at a fixed address instead of resolving "
                                                "them, like curl's --resolve (\"chatgpt.com\": \"127.0.0.1:8443\"). Only "
                                                "the TCP destination changes: SNI, certificate check and Host keep the "
                                                "real name. For tests and the demo.")

    @field_validator("resolve")
    @classmethod
    def _addresses(cls, value: dict[str, str]) -> dict[str, str]:
        for host, address in value.items():
            ip, _, port = address.rpartition(":")
            try:
                ipaddress.ip_address(ip.strip("[]"))
                valid = 0 < int(port) < 65536
            except ValueError:
                valid = False
            if not valid:
                raise ValueError(f"{host}: {address!r} is not an IP address with a port, e.g. 127.0.0.1:8443")
        return {host.lower(): address for host, address in value.items()}


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


class ProxiesSettings(Section):
    check_interval_seconds: float = Field(300.0, ge=0, description="How often every proxy of the egress pool is "
                                          "checked (connect + TLS, latency, exit IP); 0 checks only on demand.")
    failure_threshold: int = Field(3, ge=1, description="Failed checks in a row after which a proxy is excluded; its "
                                   "auto accounts move to a healthy proxy, accounts assigned to it pause.")
    max_backoff_seconds: float = Field(3600.0, gt=0, description="An excluded proxy is re-checked with doubling "
                                       "delays (from check_interval_seconds, or 30 s) up to this.")
    check_timeout_seconds: float = Field(10.0, gt=0, description="Time a check may take through the proxy.")
    check_url: HttpUrl | None = Field(None, description="The IP-echo URL checks fetch through each proxy "
                                      "(Cloudflare trace format `ip=…`, JSON {\"ip\": …} or a bare address). Default: "
                                      "/cdn-cgi/trace on the host of api.base_url.")


class SessionSettings(Section):
    ttl_minutes: float = Field(1440.0, gt=0, description="How long a dashboard log-in session lasts (minutes).")
    cleanup_interval_minutes: float = Field(15.0, gt=0, description="How often expired dashboard sessions are "
                                                                     "removed from memory (minutes).")
    allowed_hosts: list[Host] = Field(
        default_factory=list, description="Host names the dashboard answers to besides localhost, loopback addresses "
                                          "and server.host (e.g. the name of a reverse proxy in front); any other Host "
                                          "is refused with 403, against DNS rebinding (comma-separated in env).")
    allowed_origins: list[WebOrigin] = Field(
        default_factory=list, description="Origins besides the dashboard's own whose pages may change things with the "
                                          "dashboard session (normally none).")

    @field_validator("allowed_origins", "allowed_hosts", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return comma_separated(value)


class OllamaSettings(Section):
    enabled: bool = Field(False, description="Run the Ollama-compatible listener (env OLLAMA_BRIDGE_ENABLED).")
    host: Host = Field("127.0.0.1", description="Its address (env OLLAMA_BRIDGE_HOST). The Ollama API has no auth.")
    port: int = Field(11434, ge=0, le=65535, description="Its port (env OLLAMA_BRIDGE_PORT).")
    version: Version = Field("0.18.3", description="Version reported by /api/version (env OLLAMA_BRIDGE_VERSION); "
                                                   "codex --oss needs >= 0.13.4.")
    disable_vision: bool = Field(False, description="Do not advertise vision in /api/show "
                                                    "(env OLLAMA_BRIDGE_DISABLE_VISION).")
    allow_non_loopback: bool = Field(False, description="Allow a non-loopback host. Anyone who reaches it can use "
                                                        "your accounts without a key.")
    allowed_origins: list[WebOrigin] = Field(
        default_factory=list, description="Web pages (origins such as https://ui.example.com or "
                                          "chrome-extension://<id>) that may call the listener besides pages served "
                                          "from this machine; any other Origin is refused with 403, like Ollama's "
                                          "OLLAMA_ORIGINS (env CODEX_TRIO__OLLAMA__ALLOWED_ORIGINS, comma-separated).")
    allowed_hosts: list[Host] = Field(
        default_factory=list, description="Host names it answers to besides localhost, loopback addresses and its own "
                                          "address (e.g. host.docker.internal); any other Host is refused with 403, "
                                          "against DNS rebinding (env CODEX_TRIO__OLLAMA__ALLOWED_HOSTS, "
                                          "comma-separated).")

    @field_validator("allowed_origins", "allowed_hosts", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return comma_separated(value)


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    request_log: bool = Field(True, description="Keep the most recent requests in memory for GET /admin/logs and "
                                                 "its live tail (errors are also kept in the data dir).")
    request_log_size: int = Field(500, ge=0, description="How many recent requests the request log keeps in memory.")
    request_log_bodies: bool = Field(False, description="Also keep request and response bodies in the request log "
                                                        "(size-capped; secrets and images redacted). Switch at run "
                                                        "time with POST /admin/logs/state.")
    request_log_body_bytes: int = Field(8192, ge=256, description="Cap per captured body, in bytes.")


class ModelPrice(Section):
    input: float = Field(0.0, ge=0, description="USD per million input tokens (cached ones excluded).")
    cached_input: float = Field(0.0, ge=0, description="USD per million cached input tokens.")
    output: float = Field(0.0, ge=0, description="USD per million output tokens (reasoning included).")


DEFAULT_PRICES: dict[str, dict[str, float]] = {
    # API list-price equivalents of the GPT-5 family, as an estimate of what the subscription saves; edit freely.
    "gpt-5*-mini*": {"input": 0.25, "cached_input": 0.025, "output": 2.0},
    "gpt-5*": {"input": 1.25, "cached_input": 0.125, "output": 10.0},
}


class UsageStatsSettings(Section):
    enabled: bool = Field(True, description="Record one usage row per request (tokens, timing, status) per model, "
                                             "account and client key, with per-minute/hour/day rollups.")
    retention_days: int = Field(30, ge=1, description="How long raw usage rows (and per-minute rollups) are kept; "
                                                      "hourly and daily rollups are kept.")
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: {k: ModelPrice(**v) for k, v in DEFAULT_PRICES.items()},
                                          description="Cost estimate: model id or glob pattern → USD per million "
                                                      "tokens; an exact id wins, else the longest matching "
                                                      "pattern.")


class MetricsSettings(Section):
    public: bool = Field(False, description="Serve GET /metrics (Prometheus) without the admin key.")


class ProviderSettings(Section):
    fallback: bool = Field(False, description="When no subscription account can serve a model before the first byte "
                           "(all exhausted, cooling down or failing), send the request to a provider instead; the "
                           "response says so in the x-codex-trio-fallback header. Off: the usual 429 / 503.")
    fallback_model: str | None = Field(None, description="The provider model every fallback goes to, e.g. "
                                       "openrouter/openai/gpt-4o (a `<label>/<model>` or a model a provider lists).")
    fallback_models: dict[str, str] = Field(default_factory=dict, description="Per requested model: the provider "
                                            "model its fallback goes to (wins over fallback_model; with fallback on).")
    key_cooldown_seconds: float = Field(60.0, ge=0, description="How long a provider API key rests after a 429 "
                                        "without Retry-After (a refused key rests ten times as long).")
    timeout_seconds: float = Field(600.0, gt=0, description="How long a provider may take to start answering, and "
                                   "stay silent mid-stream.")


class StoreSettings(Section):
    url: str = Field("", description="Where accounts, client keys, proxies and usage are kept. Empty: SQLite files in "
                                     "the data dir (one process); `sqlite:///path/to/dir` for SQLite files in another "
                                     "folder; `postgresql://user:password@host:5432/db` for several gateway instances "
                                     "on one database (docs/scale-out.md).")

    @field_validator("url")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        scheme = value.strip().partition("://")[0].lower()
        if value.strip() and ("://" not in value or scheme not in ("sqlite", "postgresql", "postgres")):
            raise ValueError("use sqlite:///path/to/dir or postgresql://user:password@host:5432/db (or leave it "
                             "empty for SQLite in the data dir)")
        if scheme == "sqlite" and value.strip() in ("sqlite://", "sqlite:///"):
            raise ValueError("name the folder of the SQLite files: sqlite:///path/to/dir")
        return value.strip()


class Settings(Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    client: ClientSettings = Field(default_factory=ClientSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    quota: QuotaSettings = Field(default_factory=QuotaSettings)
    proxies: ProxiesSettings = Field(default_factory=ProxiesSettings)
    session: SessionSettings = Field(default_factory=SessionSettings)
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    logs: LogSettings = Field(default_factory=LogSettings)
    usage_stats: UsageStatsSettings = Field(default_factory=UsageStatsSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    providers: ProviderSettings = Field(default_factory=ProviderSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)


# Settings read once at start: a change is written but applies after a restart (the admin API lists them in
# `restart_required`). Every other setting applies to the next request or the next round of its background job.
RESTART_REQUIRED = frozenset({
    ("server", "host"), ("server", "port"),  # the listener is bound once
    ("server", "tcp_user_timeout_ms"),  # an option of the listening socket
    ("store", "url"),  # the stores are opened once at start
    ("server", "graceful_shutdown_seconds"),  # hypercorn's own grace period is fixed when the listener starts
    ("server", "keep_alive_timeout_seconds"), ("server", "header_timeout_seconds"),  # so are its connection timers
    ("api", "base_url"), ("api", "auth_base_url"),  # the endpoint, token URL and open upstream sockets
    ("tls", "ca_file"), ("tls", "resolve"),  # native clients are built with them and kept
})

# Secrets are masked wherever settings are printed.
SECRET_KEYS = frozenset({("server", "proxy_api_key"), ("store", "url")})  # a database URL may carry a password
