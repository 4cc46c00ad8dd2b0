# SPDX-License-Identifier: MIT
"""Policy packs as qund applies them: cross-border groups take the strictest value of
every region they list and the answer names the source; unknown regions are refused;
retention minimums hold the purge back; a broken pack stops qund with a message
naming the file, the field and the problem."""
import json
import os
import subprocess
import time

import pytest

from conftest import QUND, Server, expect, register, stop_clean


@pytest.fixture(scope="module")
def srv():
    s = Server(env={"QUN_TEST_CLOCK": "1"}).start()
    yield s
    stop_clean(s)


def test_cross_border_takes_the_strictest_region(srv):
    u = register(srv.url)
    g = expect(u.post("/v1/groups", {"name": "x", "kind": "cross_border", "regions": ["eu", "sg"]}), 201)["id"]
    p = expect(u.post(f"/v1/groups/{g}/dissolution/preview", {"messages": "keep"}), 200)
    pol = p["timing"]["policy"]
    assert pol["cooling_off_seconds"] == {"value": 72 * 3600, "source": "region:eu"}
    assert pol["notice_seconds"] == {"value": 7 * 86400, "source": "region:eu"}
    assert pol["notice_threshold_members"] == {"value": 200, "source": "region:sg"}
    assert pol["retention"]["messages"] == {"value": 30 * 86400, "source": "region:sg"}
    assert p["timing"]["delay_seconds"] == 72 * 3600
    # The order of regions changes nothing.
    g2 = expect(u.post("/v1/groups", {"name": "y", "kind": "cross_border", "regions": ["sg", "eu"]}), 201)["id"]
    p2 = expect(u.post(f"/v1/groups/{g2}/dissolution/preview", {"messages": "keep"}), 200)
    assert p2["timing"]["policy"] == pol
    cn = expect(u.post("/v1/groups", {"name": "z", "kind": "cross_border", "regions": ["eu", "cn"]}), 201)["id"]
    pol = expect(u.post(f"/v1/groups/{cn}/dissolution/preview", {"messages": "keep"}), 200)["timing"]["policy"]
    assert pol["export_allowed"] == {"value": False, "source": "region:cn"}


def test_unknown_region_is_refused(srv):
    u = register(srv.url)
    r = expect(u.post("/v1/groups", {"name": "x", "kind": "cross_border", "regions": ["eu", "atlantis"]}),
               422, "POLICY_UNKNOWN_REGION")
    assert "atlantis" in r["detail"]


def test_retention_minimum_holds_the_purge(srv):
    u = register(srv.url)
    g = expect(u.post("/v1/groups", {"name": "x", "kind": "cross_border", "regions": ["us", "sg"]}), 201)["id"]
    p = expect(u.post(f"/v1/groups/{g}/dissolution/preview", {"messages": "delete"}), 200)
    expect(u.post(f"/v1/groups/{g}/dissolution", {"messages": "delete", "confirmation_token": p["confirmation_token"],
                                                  "typed_name": p["name"]}), 202)
    expect(u.post("/v1/test/clock", {"advance": 48 * 3600 + 1}), 200)
    deadline = time.time() + 10
    while (st := expect(u.get(f"/v1/groups/{g}/dissolution"), 200))["state"] != "dissolved":
        assert time.time() < deadline
        time.sleep(0.05)
    jobs = {j["kind"]: j["due_at"] for j in st["jobs"]}
    # sg keeps messages 30 days and us files 30 days: both beyond the 7-day grace.
    assert jobs["purge_group"] == st["dissolved_at"] + 30 * 86400
    assert jobs["purge_payments"] == st["dissolved_at"] + 90 * 86400  # us: group payments 90 days


def test_a_broken_pack_stops_qund(tmp_path):
    pol = tmp_path / "policies"
    pol.mkdir()
    kinds = json.load(open(os.path.join(os.path.dirname(__file__), "../../policies/kinds.json")))
    kinds["kinds"]["finance"]["retention"] = {"messages": -5}
    (pol / "kinds.json").write_text(json.dumps(kinds))
    p = subprocess.run([QUND, "--listen", "127.0.0.1:1", "--data", str(tmp_path / "d"), "--set", f"policies={pol}"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "kinds.json" in p.stderr and "kinds.finance.retention.messages" in p.stderr, p.stderr


def test_finance_kept_messages_stay_exact_through_the_grace(tmp_path):
    """Masking happens at purge: within the grace the owner reads the kept messages as they
    were, and a restore gives the members back exactly what they wrote."""
    s = Server(env={"QUN_TEST_CLOCK": "1"}, extra=["--set", "cooling_off=0"]).start()
    try:
        owner, member = register(s.url), register(s.url)
        g = expect(owner.post("/v1/groups", {"name": "desk2", "kind": "finance"}), 201)["id"]
        expect(owner.post(f"/v1/groups/{g}/members", {"openid": member.openid}), 201)
        text = "call me on 138 1234 5678"
        expect(member.post(f"/v1/groups/{g}/messages", {"text": text}), 201)
        tok = expect(owner.post(f"/v1/groups/{g}/dissolution/preview", {"messages": "keep"}), 200)
        expect(owner.post(f"/v1/groups/{g}/dissolution",
                          {"messages": "keep", "confirmation_token": tok["confirmation_token"],
                           "typed_name": tok["name"]}), 202)
        deadline = time.time() + 20
        while expect(owner.get(f"/v1/groups/{g}/dissolution"), 200)["state"] != "dissolved":
            assert time.time() < deadline
            time.sleep(0.05)
        expect(member.get(f"/v1/groups/{g}/messages"), 410, "GROUP_GONE")
        kept = [m["text"] for m in expect(owner.get(f"/v1/groups/{g}/messages"), 200)["items"] if m["kind"] == "text"]
        assert kept == [text]
        expect(owner.post(f"/v1/groups/{g}/restore", {"password": "correct horse"}), 200)
        back = [m["text"] for m in expect(member.get(f"/v1/groups/{g}/messages"), 200)["items"] if m["kind"] == "text"]
        assert back == [text]
    finally:
        stop_clean(s)


def test_finance_retained_copy_is_desensitized(tmp_path):
    s = Server(env={"QUN_TEST_CLOCK": "1"}, extra=["--set", "cooling_off=0", "--set", "purge_grace=0"]).start()
    try:
        owner, member = register(s.url), register(s.url)
        g = expect(owner.post("/v1/groups", {"name": "desk", "kind": "finance"}), 201)["id"]
        expect(owner.post(f"/v1/groups/{g}/members", {"openid": member.openid}), 201)
        texts = ["call me on 138 1234 5678", "my id 11010519491231002X thanks",
                 "card 4111 1111 1111 1111 please", "order 4111111111111112 is fine"]
        for t in texts:
            expect(member.post(f"/v1/groups/{g}/messages", {"text": t}), 201)
        tok = expect(owner.post(f"/v1/groups/{g}/dissolution/preview", {"messages": "keep"}), 200)
        assert tok["timing"]["policy"]["desensitize"] == {"value": True, "source": "kind:finance"}
        # The preview says when: kept messages are masked by the purge, after the grace.
        assert tok["impact"]["messages"]["masked_at_purge"] is True and "after the grace" in tok["impact"]["messages"]["rule"]
        gone = expect(owner.post(f"/v1/groups/{g}/dissolution/preview", {"messages": "delete"}), 200)
        assert "masked_at_purge" not in gone["impact"]["messages"]
        expect(owner.post(f"/v1/groups/{g}/dissolution",
                          {"messages": "keep", "confirmation_token": tok["confirmation_token"],
                           "typed_name": tok["name"]}), 202)
        deadline = time.time() + 20
        while (st := expect(owner.get(f"/v1/groups/{g}/dissolution"), 200))["state"] != "purged":
            assert time.time() < deadline, st
            time.sleep(0.05)
        r = st["receipt"]
        assert (r["masked_phones"], r["masked_national_ids"], r["masked_bank_cards"]) == (1, 1, 1)
        kept = [m["text"] for m in expect(owner.get(f"/v1/groups/{g}/messages"), 200)["items"] if m["kind"] == "text"]
        assert kept == ["call me on 138 **** 5678", "my id 110105********002X thanks",
                        "card **** **** **** 1111 please", "order 4111111111111112 is fine"]
        purged = [json.loads(h["entry"]) for h in expect(owner.get(f"/v1/groups/{g}/history"), 200)["items"]
                  if h["event"] == "group.purged"][0]
        assert purged["receipt"]["masked_bank_cards"] == 1
    finally:
        stop_clean(s)
