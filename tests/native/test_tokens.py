"""count_tokens equals the `tiktoken` package's o200k_base count.

tiktoken cannot download its rank file offline, so the test feeds tiktoken's own loader (through its
cache directory) the rank file that ships in the `tiktoken-rs` crate, after checking that file against
the SHA-256 tiktoken itself expects for o200k_base. The two BPE implementations (tiktoken's and
tiktoken-rs's) then count independently.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil

import pytest

from codex_trio.native import count_tokens, count_tokens_batch

tiktoken = pytest.importorskip("tiktoken")
from tiktoken_ext import openai_public  # noqa: E402

URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
EXPECTED_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"

TEXTS = [
    "Hello, world!",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "Grüße aus Köln — ¿qué tal? 東京は晴れです。 Привет мир 🌍🚀",
    "   leading and    inner spaces\n\n\n\ttabs\r\n",
    "<|endoftext|> is text here, and so is <|im_start|>",
    '{"type":"response.create","model":"gpt-5.5","input":[{"role":"user","content":"hi"}]}',
    "x" * 5000,
    "",
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    cargo_home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    found = glob.glob(f"{cargo_home}/registry/src/*/tiktoken-rs-*/assets/o200k_base.tiktoken")
    if not found:
        pytest.fail("tiktoken-rs sources are not in the cargo registry: build the extension first (scripts/test does)")
    data = open(found[0], "rb").read()
    assert hashlib.sha256(data).hexdigest() == EXPECTED_SHA256
    assert EXPECTED_SHA256 in open(openai_public.__file__).read()
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    shutil.copy(found[0], cache / hashlib.sha1(URL.encode()).hexdigest())
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        return tiktoken.Encoding(**openai_public.o200k_base())
    finally:
        if previous is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous


def test_counts_equal_tiktoken(reference):
    expected = [len(reference.encode_ordinary(text)) for text in TEXTS]
    assert [count_tokens(text) for text in TEXTS] == expected
    assert count_tokens_batch(TEXTS) == expected
    assert expected[0] == 4
