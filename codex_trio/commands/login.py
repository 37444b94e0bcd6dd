"""`codex-trio login`: add a ChatGPT account to the data dir by browser, pasted callback or device code."""

from __future__ import annotations

import argparse
import sys
import webbrowser
from typing import TYPE_CHECKING, Any

from .common import issuer_option, run_with_accounts, say

if TYPE_CHECKING:
    from ..accounts.login import OAuthClient
    from ..accounts.oauth import TokenGrant
    from ..accounts.service import AccountService
    from ..services import Services

LOGIN_TIMEOUT = 15 * 60


def _describe_login(result: dict[str, Any]) -> str:
    account = result["account"]
    who = account.get("email") or account.get("account_id")
    return (f"Logged in as {who} ({account.get('plan_type') or 'unknown plan'}); account {account['id']} "
            f"{'added' if result['created'] else 'updated'}.")


def cmd_login(args: argparse.Namespace) -> int:
    from ..accounts.login import OAuthClient

    async def work(services: "Services", accounts: "AccountService") -> int:
        client = OAuthClient(services.oauth_http, identity=services.connector.identity,
                             issuer=services.connector.endpoint.auth_url)
        if args.device:
            grant = await _device_login(client)
        elif args.paste:
            grant = await _paste_login(client)
        else:
            grant = await _browser_login(client, args.callback_port)
        say(_describe_login(await accounts.add_from_grant(grant, label=args.label)))
        return 0

    return run_with_accounts(args, work, sets_up=True)


async def _browser_login(client: "OAuthClient", port: int | None) -> "TokenGrant":
    import trio

    from ..accounts import oauth
    from ..accounts.login import LoginError, LoginServer

    server = await LoginServer.bind(client, (port,) if port is not None else oauth.CALLBACK_PORTS)
    try:
        say(f"Open this address in a browser to sign in:\n\n    {server.login.url}\n")
        say(f"Waiting for the sign-in on {server.login.redirect_uri} (Ctrl-C to stop) …")
        if sys.stdout.isatty():
            webbrowser.open(server.login.url)
        with trio.fail_after(LOGIN_TIMEOUT):
            return await server.serve()
    except trio.TooSlowError:
        raise LoginError("the sign-in did not finish in time; run `codex-trio login` again") from None
    finally:
        await server.aclose()


async def _paste_login(client: "OAuthClient") -> "TokenGrant":
    import trio

    from ..accounts.login import LoginError

    login = client.begin_browser()
    say(f"Open this address in a browser (on any machine) to sign in:\n\n    {login.url}\n")
    say("The browser then ends on an address starting with http://127.0.0.1:1455/auth/callback that does not "
         "load. Copy that full address and paste it here:")
    line = await trio.to_thread.run_sync(sys.stdin.readline)
    if not line.strip():
        raise LoginError("nothing was pasted; run `codex-trio login --paste` again")
    return await client.complete_pasted(login, line)


async def _device_login(client: "OAuthClient") -> "TokenGrant":
    from ..accounts.login import DEVICE_LOGIN_TIMEOUT

    code = await client.device_begin()
    say(f"Open {code.verification_url} and enter this code:\n\n    {code.user_code}\n")
    say("Waiting for the confirmation (Ctrl-C to stop) …")
    return await client.device_complete(code, timeout=DEVICE_LOGIN_TIMEOUT)


def register(commands: "argparse._SubParsersAction", common: argparse.ArgumentParser) -> None:
    login = commands.add_parser("login", parents=[common, issuer_option()], help="log in a ChatGPT account (browser by "
                                                                        "default)")
    mode = login.add_mutually_exclusive_group()
    mode.add_argument("--device", action="store_true", help="device-code login: show a code to enter on any device")
    mode.add_argument("--paste", action="store_true", help="print the URL and read the pasted callback URL (for "
                                                           "hosts the browser cannot reach)")
    login.add_argument("--label", help="a name for the account")
    login.add_argument("--callback-port", type=int, help="local callback port (default 1455, then 1457)")
    login.set_defaults(handler=cmd_login)

