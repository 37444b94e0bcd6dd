"""Who the gateway claims to be upstream: a typed view of `config/fingerprint.yaml`.

`Identity` is one concrete client (a profile of one Codex release on one platform). It derives the
user-agent exactly as codex-rs does: `<originator>/<version> (<os> <os version>; <arch>) <terminal>`,
followed by ` (<client name>; <client version>)` once the in-process app-server knows its client. Calls the
real client makes before that point (routing discovery, the first models fetch, a proactive refresh) carry
the bootstrap form, and the TUI even uses another originator (`codex_cli_rs`) for them.
"""

from __future__ import annotations

import os
import platform as _platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from pydantic import BaseModel, ConfigDict, Field
from ruamel.yaml import YAML

# Shipped inside the package so pip installs have it; config/fingerprint.yaml links here.
DEFAULT_FINGERPRINT_PATH = Path(__file__).resolve().parents[1] / "config" / "fingerprint.yaml"
AUTO = "auto"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlatformConfig(_Strict):
    os_name: str = AUTO
    os_version: str = AUTO
    arch: str = AUTO
    terminal: str = AUTO


class ProfileConfig(_Strict):
    originator: str
    bootstrap_originator: str
    client_name: str
    client_version: str
    turn_trigger: str
    sandbox_mode: str
    luna_reserve_on_usage: bool = False


class HeaderConfig(_Strict):
    beta_features: str
    websocket_beta: str
    mcp_user_agent: str


class TurnMetadataConfig(_Strict):
    agent_name: str
    history_initialization: str
    thread_source: str
    sandbox: str
    auto_review_enabled: bool
    node_repl_disabled: bool
    analytics_enabled: bool


class EndpointConfig(_Strict):
    chatgpt_base_url: str
    auth_base_url: str
    oauth_client_id: str


class BodyConfig(_Strict):
    instructions: Literal["developer_message", "field"] = "developer_message"


class CompressionConfig(_Strict):
    zstd_level: int = Field(3, ge=1, le=22)


class ReleaseConfig(_Strict):
    """What one captured Codex release does differently from the others."""

    fixtures: str
    # The only value the native stack can send: what reqwest's `zstd` + `gzip` features produce.
    accept_encoding: Literal["zstd,gzip"] | None = None


class FingerprintConfig(_Strict):
    releases: dict[str, ReleaseConfig]
    default_release: str
    platform: PlatformConfig
    default_profile: str
    profiles: dict[str, ProfileConfig]
    headers: HeaderConfig
    turn_metadata: TurnMetadataConfig
    endpoints: EndpointConfig
    body: BodyConfig = BodyConfig()
    compression: CompressionConfig


def load_fingerprint(path: Path | str = DEFAULT_FINGERPRINT_PATH) -> FingerprintConfig:
    data = YAML(typ="safe").load(Path(path).read_text(encoding="utf-8"))
    config = FingerprintConfig.model_validate(data)
    if config.default_profile not in config.profiles:
        raise ValueError(f"fingerprint: default_profile {config.default_profile!r} is not one of the profiles")
    if config.default_release not in config.releases:
        raise ValueError(f"fingerprint: default_release {config.default_release!r} is not one of the releases")
    return config


def verified_releases(config: FingerprintConfig) -> list[str]:
    """The releases with a captured profile, oldest first."""
    return sorted(config.releases, key=_release_key)


def newest_release(config: FingerprintConfig) -> str:
    return verified_releases(config)[-1]


def presented_release(config: FingerprintConfig, wanted: str | None) -> tuple[str, str | None]:
    """(the release to present, why it is not `wanted`). A wanted version without a verified profile gives
    the newest verified release: never a new version string on an old release's wire."""
    if not wanted:
        return config.default_release, None
    if wanted in config.releases:
        return wanted, None
    newest = newest_release(config)
    return newest, (f"client.version {wanted} has no verified profile (known: {', '.join(verified_releases(config))}); "
                    f"presenting Codex {newest}")


def _release_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


# ---- platform derivation (the real client's rules, as pure functions) ---------------------------------

# os_info's display names for the Linux distributions people actually run gateways on.
_OS_NAMES = {
    "debian": "Debian", "ubuntu": "Ubuntu", "fedora": "Fedora", "arch": "Arch Linux", "alpine": "Alpine Linux",
    "centos": "CentOS", "rhel": "Red Hat Enterprise Linux", "rocky": "Rocky Linux", "almalinux": "AlmaLinux",
    "amzn": "Amazon Linux AMI", "opensuse-leap": "openSUSE", "opensuse-tumbleweed": "openSUSE", "linuxmint": "Linux Mint",
    "nixos": "NixOS", "manjaro": "Manjaro", "pop": "Pop!_OS", "gentoo": "Gentoo Linux",
}


def os_from_os_release(text: str | None) -> tuple[str, str]:
    """(name, version) like os_info reports them: versions become `major.minor.patch` ("12" -> "12.0.0")."""
    fields: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"').strip("'")
    name = _OS_NAMES.get(fields.get("ID", "").lower(), "Linux")
    raw = fields.get("VERSION_ID", "")
    parts = raw.split(".")
    if raw and len(parts) <= 3 and all(p.isdigit() for p in parts):
        version = ".".join(str(int(p)) for p in (parts + ["0", "0"])[:3])
    else:
        version = raw or "Rolling Release"
    return name, version


def terminal_from_env(env: Mapping[str, str]) -> str:
    """The user-agent's terminal token: TERM_PROGRAM[/TERM_PROGRAM_VERSION], else Windows Terminal, else TERM."""
    program = env.get("TERM_PROGRAM", "").strip()
    if program:
        version = env.get("TERM_PROGRAM_VERSION", "").strip()
        return f"{program}/{version}" if version else program
    if env.get("WT_SESSION"):
        return "WindowsTerminal"
    return env.get("TERM", "").strip() or "unknown"


def sanitize_header_value(value: str) -> str:
    """codex-rs replaces every character that may not appear in a header value with `_`."""
    return "".join(c if " " <= c <= "~" else "_" for c in value)


@dataclass(frozen=True, slots=True)
class Platform:
    os_name: str
    os_version: str
    arch: str
    terminal: str

    @classmethod
    def resolve(cls, config: PlatformConfig, *, os_release: str | None = None, machine: str | None = None,
                env: Mapping[str, str] | None = None) -> "Platform":
        """Pinned values from config; `auto` ones from the inputs (or from this host when not given)."""
        needs_os = AUTO in (config.os_name, config.os_version)
        if needs_os and os_release is None:
            os_release = _read_os_release()
        derived_name, derived_version = os_from_os_release(os_release) if needs_os else ("", "")
        return cls(
            os_name=derived_name if config.os_name == AUTO else config.os_name,
            os_version=derived_version if config.os_version == AUTO else config.os_version,
            arch=(machine or _platform.machine() or "unknown") if config.arch == AUTO else config.arch,
            terminal=terminal_from_env(os.environ if env is None else env)
            if config.terminal == AUTO else config.terminal,
        )


def _read_os_release() -> str | None:
    for candidate in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            return Path(candidate).read_text(encoding="utf-8")
        except OSError:
            continue
    return None


# ---- the identity -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    profile: str
    version: str
    originator: str
    bootstrap_originator: str
    client_name: str
    client_version: str
    platform: Platform
    turn_trigger: str
    sandbox_mode: str
    luna_reserve_on_usage: bool
    beta_features: str
    websocket_beta: str
    mcp_user_agent: str
    turn_metadata: TurnMetadataConfig
    chatgpt_base_url: str
    auth_base_url: str
    oauth_client_id: str
    instructions_as_message: bool
    zstd_level: int
    accept_encoding: str | None = None  # sent by the HTTP stack itself (see `decompress`), never by a builder

    @property
    def decompress(self) -> bool:
        """Whether this release's HTTP client accepts and decodes compressed answers (native `decompress`)."""
        return self.accept_encoding is not None

    @classmethod
    def from_config(cls, config: FingerprintConfig, profile: str | None = None, *, release: str | None = None,
                    client_name: str | None = None, client_version: str | None = None,
                    platform: Platform | None = None) -> "Identity":
        """One profile of one release of the config (default: `default_release`). `client_name` /
        `client_version` override the profile's (app-server)."""
        name = profile or config.default_profile
        if name not in config.profiles:
            raise ValueError(f"unknown client profile {name!r}; known: {', '.join(config.profiles)}")
        version = release or config.default_release
        if version not in config.releases:
            raise ValueError(f"Codex {version} has no verified profile; known releases: "
                             f"{', '.join(verified_releases(config))}")
        p = config.profiles[name]
        resolved_client = client_name or p.client_name
        expand = {"version": version, "client_name": resolved_client}
        return cls(
            profile=name,
            version=version,
            originator=p.originator.format(**expand),
            bootstrap_originator=p.bootstrap_originator.format(**expand),
            client_name=resolved_client,
            client_version=(client_version or p.client_version).format(**expand),
            platform=platform or Platform.resolve(config.platform),
            turn_trigger=p.turn_trigger,
            sandbox_mode=p.sandbox_mode,
            luna_reserve_on_usage=p.luna_reserve_on_usage,
            beta_features=config.headers.beta_features,
            websocket_beta=config.headers.websocket_beta,
            mcp_user_agent=config.headers.mcp_user_agent.format(**expand),
            turn_metadata=config.turn_metadata,
            chatgpt_base_url=config.endpoints.chatgpt_base_url.rstrip("/"),
            auth_base_url=config.endpoints.auth_base_url.rstrip("/"),
            oauth_client_id=config.endpoints.oauth_client_id,
            instructions_as_message=config.body.instructions == "developer_message",
            zstd_level=config.compression.zstd_level,
            accept_encoding=config.releases[version].accept_encoding,
        )

    def originator_for(self, *, initialised: bool = True) -> str:
        return self.originator if initialised else self.bootstrap_originator

    def user_agent(self, *, initialised: bool = True) -> str:
        p = self.platform
        product = self.originator_for(initialised=initialised)
        agent = f"{product}/{self.version} ({p.os_name} {p.os_version}; {p.arch}) {p.terminal}"
        if initialised:
            agent += f" ({self.client_name}; {self.client_version})"
        return sanitize_header_value(agent)
