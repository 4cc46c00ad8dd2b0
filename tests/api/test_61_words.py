# SPDX-License-Identifier: MIT
"""Every code a client may have to show has words in English and Simplified Chinese, in
the console (web/js/i18n.js, or a view's addWords) and in the CLI (src/qun/words.def).

The codes are read from the server's own sources, so a code added there without words
fails here: the problem codes of include/qun/errors.def, the verification methods a 428
names, the reasons of PASSKEY_INVALID, the risk rules, the approval kinds, the impact
rules and delay rules of a dissolution preview and the actions a challenge is bound to.
No server is started."""
import glob
import os
import re

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def found(pattern, *paths):
    out = set()
    for p in paths:
        out |= set(re.findall(pattern, read(p), re.M))
    return out


def server_codes():
    """{console/CLI key prefix: set of codes} as the server's sources emit them."""
    codes = {
        "error.": found(r"^QUN_E\((\w+),", "include/qun/errors.def") - {"OK"},
        "req.method.": found(r'\{QUN_VM_\w+, "(\w+)"\}', "src/core/policy.c")
        | found(r'"method", "(\w+)"', "src/core/dissolution.c", "src/http/h_dissolution.c"),
        "passkey.reason.": found(r'refuse\(err, problem, "(\w+)"', "src/core/passkey.c")
        | found(r'"reason", json_string\("(\w+)"\)', "src/core/passkey.c"),
        "risk.rule.": found(r'reason\(\s*\w+, "(\w+)"', "src/core/risk.c"),
        "approval.kind.": found(r'add\(db, did, g->id, "(\w+)"', "src/core/approval.c")
        | found(r'"kind", "(\w+)"', "src/core/approval.c"),
        "approval.from.": found(r'"from_code",\s*"(\w+)"', "src/core/approval.c"),
        "diss.rule.": found(r'"rule_code", "(\w+)"', "src/core/dissolution.c")
        | found(r'"(messages_(?:keep|delete|masked))"', "src/core/dissolution.c")
        | set(re.findall(r'"(\w+)"', re.search(r"rule_codes\[\] = \{([^}]*)\}", read("src/core/dissolution.c")).group(1))),
        "diss.rule_name.": found(r'"rule", "(\w+)"', "src/core/dissolution.c"),
        "action.": found(r'\.action = "(\w+)"', "src/core/dissolution.c")
        | found(r'action_(?:verify|preview)\(db, a, &g, "(\w+)"', "src/core/group.c")
        | found(r'#define QUN_ACTION_\w+ "(\w+)"', "include/qun/verify.h", "include/qun/passkey.h"),
    }
    return codes


def console_words():
    """(en, zh): the keys of web/js/i18n.js's two dictionaries, with the views' addWords."""
    src = read("web/js/i18n.js")
    cut = src.index("const zh = {")
    key = re.compile(r"^\s*'([\w.]+)':\s*(?:'(?:[^'\\]|\\.)+'|\"(?:[^\"\\]|\\.)+\"|`[^`]+`)", re.M)
    en, zh = set(key.findall(src[:cut])), set(key.findall(src[cut:]))
    for path in glob.glob(os.path.join(ROOT, "web/js/views/*.js")) + glob.glob(os.path.join(ROOT, "web/js/*.js")):
        text = open(path, encoding="utf-8").read()
        for lang, block in re.findall(r"^(?:\s*|addWords\(\{\s*)(en|zh):\s*\{(.*?)^\s*\}", text, re.M | re.S):
            (en if lang == "en" else zh).update(key.findall(block))
    return en, zh


def cli_words():
    """{key: (en, zh)} of src/qun/words.def."""
    rows = re.findall(r'^W\("([^"]+)", "((?:[^"\\]|\\.)*)", "((?:[^"\\]|\\.)*)"\)$', read("src/qun/words.def"), re.M)
    return {k: (e, z) for k, e, z in rows}


def test_the_codes_are_found_at_all():
    """The extraction itself works: a broken pattern must not pass by finding nothing."""
    c = server_codes()
    assert {"PASSKEY_INVALID", "PASSKEY_NOT_FOUND", "PASSKEY_EXISTS", "TOTP_REQUIRED", "GROUP_NOT_FOUND"} <= c["error."]
    assert {"confirm", "typed_name", "device_key", "qr", "totp", "password"} <= c["req.method."]
    assert {"malformed", "origin", "user_verified", "sign_count", "challenge"} <= c["passkey.reason."]
    assert {"frequency", "new_device", "linked", "anomaly", "score"} <= c["risk.rule."]
    assert {"org_admin", "school_admin", "guardian", "risk_review"} <= c["approval.kind."]
    assert {"org_admins", "school_admins", "guardian"} <= c["approval.from."]
    assert {"messages_keep", "messages_delete", "messages_masked", "files", "exports", "grants"} <= c["diss.rule."]
    assert {"cooling_off", "notice"} <= c["diss.rule_name."]
    assert {"dissolve", "transfer", "bulk_remove", "register_device_key", "register_passkey"} <= c["action."]
    en, zh = console_words()
    assert "error.INVITATION_REQUIRED" in en and "error.INVITATION_REQUIRED" in zh and len(en) > 300
    assert "error.PASSKEY_INVALID" in cli_words()


@pytest.mark.parametrize("prefix", sorted(server_codes()))
def test_every_code_has_console_words_in_both_languages(prefix):
    en, zh = console_words()
    codes = server_codes()[prefix]
    missing = sorted(f"{prefix}{c} ({lang})" for c in codes for lang, d in (("en", en), ("zh", zh))
                     if prefix + c not in d)
    assert not missing, "web/js/i18n.js has no words for: " + ", ".join(missing)


@pytest.mark.parametrize("prefix", sorted(server_codes()))
def test_every_code_has_cli_words_in_both_languages(prefix):
    words = cli_words()
    codes = server_codes()[prefix]
    missing = sorted(prefix + c for c in codes if not all(words.get(prefix + c, ("", ""))))
    assert not missing, "src/qun/words.def has no words for: " + ", ".join(missing)


def test_cli_chinese_words_are_chinese():
    """A row whose Chinese is a copy of its English was not translated."""
    same = [k for k, (e, z) in cli_words().items() if e == z and re.search(r"[a-z]{4}", e)]
    assert not same, same


def test_cli_rows_keep_their_parameters():
    """Both languages of a row take the same number of %s, filled in one order."""
    bad = [k for k, (e, z) in cli_words().items() if e.count("%s") != z.count("%s")]
    assert not bad, bad
