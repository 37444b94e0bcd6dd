module codex-trio/benches/loadclient

go 1.22
