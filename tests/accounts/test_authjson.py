import os
import stat

import orjson
import pytest

from codex_trio.accounts.authjson import AuthJsonError, read_auth_json, write_back

from .helpers import access_token


def write(path, data):
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


def test_reads_the_cli_file(tmp_path):
    at = access_token("acc", 1_800_000_000)
    write(tmp_path / "auth.json", {"auth_mode": "chatgpt", "OPENAI_API_KEY": None,
                                   "tokens": {"id_token": "i", "access_token": at, "refresh_token": "r",
                                              "account_id": "acc"},
                                   "last_refresh": "2026-05-01T12:34:56.789Z"})
    login = read_auth_json(env={"CODEX_HOME": str(tmp_path)})
    assert (login.access_token, login.refresh_token, login.id_token, login.account_id) == (at, "r", "i", "acc")
    assert login.last_refresh == pytest.approx(1777638896.789)


@pytest.mark.parametrize("mode", ["keyring", "auto"])
def test_keyring_mode_explains_what_to_do(tmp_path, mode):
    (tmp_path / "config.toml").write_text(f'cli_auth_credentials_store = "{mode}"\n')
    with pytest.raises(AuthJsonError) as exc:
        read_auth_json(env={"CODEX_HOME": str(tmp_path)})
    text = str(exc.value)
    assert "keyring" in text and 'cli_auth_credentials_store = "file"' in text and "codex login" in text


def test_missing_file_and_api_key_login_explain(tmp_path):
    with pytest.raises(AuthJsonError, match="no .*auth.json.*codex login"):
        read_auth_json(env={"CODEX_HOME": str(tmp_path)})
    write(tmp_path / "auth.json", {"OPENAI_API_KEY": "sk-x"})
    with pytest.raises(AuthJsonError, match="API-key login"):
        read_auth_json(tmp_path / "auth.json")
    (tmp_path / "auth.json").write_text("{nope")
    with pytest.raises(AuthJsonError, match="not valid JSON"):
        read_auth_json(tmp_path / "auth.json")


def test_write_back_replaces_tokens_atomically_and_privately(tmp_path):
    path = tmp_path / "auth.json"
    write(path, {"auth_mode": "chatgpt", "OPENAI_API_KEY": None, "tokens": {"id_token": "i", "access_token": "a",
              "refresh_token": "r1", "account_id": "acc", "login_owner_id": "keep"}, "last_refresh": "x"})
    os.chmod(path, 0o644)
    assert write_back(path, previous_refresh_token="r1", access_token="a2", refresh_token="r2", id_token="i2",
                      account_id="acc", refreshed_at=1_800_000_000)
    data = orjson.loads(path.read_bytes())
    assert data["tokens"] == {"id_token": "i2", "access_token": "a2", "refresh_token": "r2", "account_id": "acc",
                              "login_owner_id": "keep"}
    assert data["last_refresh"] == "2027-01-15T08:00:00.000Z" and data["OPENAI_API_KEY"] is None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["auth.json"]


def test_write_back_leaves_another_login_or_a_broken_file_alone(tmp_path):
    path = tmp_path / "auth.json"
    write(path, {"tokens": {"access_token": "a", "refresh_token": "someone-else"}})
    before = path.read_bytes()
    assert not write_back(path, previous_refresh_token="r1", access_token="a2", refresh_token="r2", id_token=None,
                          account_id=None, refreshed_at=0)
    assert path.read_bytes() == before
    path.write_text("{broken")
    assert not write_back(path, previous_refresh_token="r1", access_token="a2", refresh_token="r2", id_token=None,
                          account_id=None, refreshed_at=0)
    assert path.read_text() == "{broken"
