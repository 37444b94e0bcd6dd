import orjson
import pytest

from codex_trio.accounts.formats import (ImportFormatError, export_full, export_minimal, export_refresh_tokens,
                                         parse_import)
from codex_trio.accounts.model import Account, Tokens


def test_reference_gateway_import_example():
    # the request body of seeds/codex-proxy-readme.txt "Bulk import"
    body = b'{"accounts": [{ "token": "eyJhbGciOi..." }, { "refreshToken": "v1.abc..." },' \
           b' { "refreshToken": "v1.def...", "label": "Backup" }]}'
    entries, errors = parse_import(body)
    assert errors == []
    assert [(e.access_token, e.refresh_token, e.label) for e in entries] == [
        ("eyJhbGciOi...", None, None), (None, "v1.abc...", None), (None, "v1.def...", "Backup")]


def test_minimal_formats():
    entries, _ = parse_import("rt_1\n\n# comment\n  rt_2  \n")
    assert [e.refresh_token for e in entries] == ["rt_1", "rt_2"]
    entries, _ = parse_import('["rt_a", "rt_b"]')
    assert [e.refresh_token for e in entries] == ["rt_a", "rt_b"]


def test_auth_json_object_and_bad_entries():
    entries, errors = parse_import({"tokens": {"access_token": "a", "refresh_token": "r", "id_token": "i"}})
    assert [(e.access_token, e.refresh_token, e.id_token) for e in entries] == [("a", "r", "i")]
    entries, errors = parse_import({"accounts": [{"label": "x"}, 7, {"refresh_token": "r"}]})
    assert [e.refresh_token for e in entries] == ["r"]
    assert errors == ["accounts[0]: entry has neither an access token nor a refresh token",
                      "accounts[1]: expected an object or a refresh-token string"]
    for bad in ("", "{nope", '{"x": 1}', "   \n"):
        with pytest.raises(ImportFormatError):
            parse_import(bad)


def test_full_export_round_trips_and_minimal_export_has_only_rt_and_label():
    accounts = [Account(id="1", tokens=Tokens("a1", "r1", "i1"), label="L", installation_id="inst",
                        cookies=[{"name": "cf_clearance", "value": "v"}], proxy="socks5://p", enabled=False),
                Account(id="2", tokens=Tokens("a2", None, None), installation_id="inst2")]
    full = orjson.loads(orjson.dumps(export_full(accounts)))
    entries, errors = parse_import(full)
    assert errors == []
    assert [(e.access_token, e.refresh_token, e.id_token, e.label, e.enabled, e.installation_id, e.proxy)
            for e in entries] == [("a1", "r1", "i1", "L", False, "inst", "socks5://p"),
                                  ("a2", None, None, None, True, "inst2", None)]
    assert entries[0].cookies == [{"name": "cf_clearance", "value": "v"}]
    assert export_minimal(accounts) == {"accounts": [{"refreshToken": "r1", "label": "L"}]}
    assert export_refresh_tokens(accounts) == "r1\n"
