# SPDX-License-Identifier: MIT
"""docs/openapi.yaml against the server: every route of src/http/routes.def is documented
and nothing else is (both directions), the documented flags (bearer, JSON or raw body,
Idempotency-Key) and request schemas follow the route table and the handlers' field
tables, every error code the document names exists in include/qun/errors.def with the
status the document gives it, and a running qund answers 405 on a documented path
called with a method it lacks."""
import os
import re

import pytest
import requests
import yaml

from conftest import expect

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "../.."))
METHODS = ("get", "post", "put", "patch", "delete", "head", "options", "trace")
# R_CHECKS_FIRST and R_ACTOR_CACHED change how the writer runs a route, not what it answers.
FLAG_BITS = ("R_AUTH", "R_WRITE", "R_JSON", "R_RAW", "R_NOIDEM", "R_TICKET", "R_LOCKOUT", "R_CHECKS_FIRST",
             "R_ACTOR_CACHED")
# Outside the router: served by evhttp_set_cb only with the bench_hello setting.
OUTSIDE_ROUTER = {("GET", "/bench/hello")}
# Body members a field table accepts but the handler refuses anyway (documented as such).
REFUSED_MEMBERS = {("POST", "/v1/groups/:/dissolution/preview"): {"confirmation_token", "password", "totp_code", "challenge_id",
                                                                     "typed_name", "step_up_challenge_id"}}


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def strip_c_comments(text):
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def routes():
    """{(METHOD, pattern): {"prep", "run", "flags"}} from routes.def."""
    out = {}
    for m in re.finditer(r'ROUTE\(\s*"(\w+)"\s*,\s*"([^"]+)"\s*,\s*(\w+)\s*,\s*(\w+)\s*,\s*([^)]*)\)',
                         strip_c_comments(read("src/http/routes.def"))):
        key = (m.group(1), m.group(2))
        assert key not in out, f"duplicate route {key}"
        flags = {f.strip() for f in m.group(5).split("|")} - {"0", ""}
        assert flags <= set(FLAG_BITS), flags
        out[key] = {"prep": m.group(3), "run": m.group(4), "flags": flags}
    assert len(out) > 30, "routes.def did not parse"
    return out


def errors_def():
    """{CODE: status} from errors.def."""
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"QUN_E\(\s*(\w+)\s*,\s*(\d+)\s*,", read("include/qun/errors.def"))}


def normalise(path):
    """/v1/groups/{id}/members/{openid} -> /v1/groups/:/members/:"""
    return re.sub(r"\{[^}/]+\}", ":", path)


@pytest.fixture(scope="module")
def doc():
    with open(os.path.join(ROOT, "docs/openapi.yaml"), encoding="utf-8") as f:
        d = yaml.safe_load(f)
    assert str(d["openapi"]).startswith("3.1"), d["openapi"]
    return d


def operations(doc):
    """{(METHOD, normalised pattern): operation}"""
    out = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                key = (method.upper(), normalise(path))
                assert key not in out, f"documented twice: {key}"
                out[key] = op
    return out


def resolve(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target = doc
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


# ---- coverage, both directions ----

def test_every_route_is_documented(doc):
    missing = sorted(set(routes()) - set(operations(doc)))
    assert not missing, f"routes.def routes missing from docs/openapi.yaml: {missing}"


def test_no_documented_route_the_server_lacks(doc):
    ops = operations(doc)
    extra = set(ops) - set(routes())
    assert extra == OUTSIDE_ROUTER, f"documented but not in routes.def: {sorted(extra - OUTSIDE_ROUTER)}"
    for key in OUTSIDE_ROUTER:
        op = ops[key]
        assert op.get("x-qun-outside-router") is True and "internal" in op["tags"], key
    assert 'evhttp_set_cb(w->http, "/bench/hello"' in read("src/http/server.c")


def test_path_parameters_are_declared(doc):
    for path, item in doc["paths"].items():
        names = re.findall(r"\{([^}/]+)\}", path)
        assert len(names) == len(set(names)), path
        for method, op in item.items():
            if method not in METHODS:
                continue
            declared = {resolve(doc, p)["name"] for p in op.get("parameters", [])
                        if resolve(doc, p)["in"] == "path"}
            assert declared == set(names), f"{method.upper()} {path}: path parameters {declared} != {names}"


# ---- the route table's flags ----

def test_flags_match_the_document(doc):
    ops = operations(doc)
    for (method, pattern), r in routes().items():
        op, f = ops[(method, pattern)], r["flags"]
        where = f"{method} {pattern}"
        sec = op.get("security", doc.get("security"))
        want = [{"bearer": []}] + ([{"eventTicket": []}] if "R_TICKET" in f else [])
        assert (sec == want) == ("R_AUTH" in f), f"{where}: security {sec} vs flags {f}"
        codes = set(op["x-qun-errors"])
        assert ("TICKET_INVALID" in codes) == ("R_TICKET" in f), where
        assert ("UNAUTHENTICATED" in codes and "TOKEN_INVALID" in codes) == ("R_AUTH" in f), where
        assert ("LOCKED_OUT" in codes) == ("R_LOCKOUT" in f), f"{where}: LOCKED_OUT vs flags {f}"
        body = op.get("requestBody")
        if "R_JSON" in f:
            assert body and list(body["content"]) == ["application/json"], where
            assert body["content"]["application/json"]["schema"].get("additionalProperties") is False, where
            assert {"BAD_JSON", "BODY_TOO_LARGE", "FIELD_UNKNOWN"} <= codes, where
        elif "R_RAW" in f:
            assert body and "application/json" not in body["content"], where
        else:
            assert body is None, f"{where} reads no body but documents one"
        idem = [resolve(doc, p) for p in op.get("parameters", []) if resolve(doc, p)["name"] == "Idempotency-Key"]
        assert len(idem) == (1 if method == "POST" else 0), f"{where}: Idempotency-Key parameter"
        if method == "POST":
            assert idem[0]["in"] == "header", where
            replayed = "R_WRITE" in f and "R_NOIDEM" not in f
            documented = "IDEMPOTENCY_KEY_REUSED" in codes
            assert documented == replayed, f"{where}: replay documented {documented}, served {replayed}"
            ok = [s for s in op["responses"] if s.startswith("2")]
            for s in ok:
                has = "Idempotent-Replayed" in op["responses"][s].get("headers", {})
                assert has == (replayed and s != "204"), f"{where}: Idempotent-Replayed header on {s}"
            if "R_NOIDEM" in f:
                assert "ignored" in idem[0]["description"].lower(), where


# ---- request bodies against the handlers' field tables ----

def c_function(src, name):
    m = re.search(r"qun_rc\s+%s\s*\(qun_req_t \*r\)\s*\{" % re.escape(name), src)
    if not m:
        return None
    depth, i = 1, m.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(src[i], 0)
        i += 1
    return src[m.start():i]


ROW = re.compile(r'\{\s*"(\w+)"\s*,\s*(F_\w+)\s*,\s*(true|false)\s*,\s*([^,]+?)\s*,\s*([^,]+?)\s*,\s*(NULL|"[^"]*")\s*\}')


def c_int(expr):
    return int(eval(re.sub(r"(\d+)[LlUu]+", r"\1", expr), {"__builtins__": {}}))


def handler_fields(name):
    """The field rows a handler checks its body against, or None when it checks none."""
    src = strip_c_comments("\n".join(read(os.path.join("src/http", f)) for f in sorted(os.listdir(
        os.path.join(ROOT, "src/http"))) if f.startswith("h_") and f.endswith(".c")))
    body = c_function(src, name)
    if body is None:
        return None
    call = re.search(r"qun_fields_check\(\s*r->json\s*,\s*(\w+)\s*,", body)
    if not call:
        return None
    table = call.group(1)
    pat = r"static const qun_field_t\s+%s\[\]\s*=\s*\{(.*?)\{\s*0\s*\}\s*\}\s*;" % re.escape(table)
    m = re.search(pat, body, re.S) or re.search(pat, src, re.S)
    assert m, f"{name}: field table {table} not found"
    rows = {}
    for r in ROW.finditer(m.group(1)):
        rows[r.group(1)] = {"type": r.group(2), "required": r.group(3) == "true", "min": c_int(r.group(4)),
                            "max": c_int(r.group(5)),
                            "oneof": None if r.group(6) == "NULL" else r.group(6).strip('"').split("|")}
    return rows


def types_of(schema):
    t = schema.get("type")
    return set(t) if isinstance(t, list) else {t}


def check_field(where, name, row, schema):
    base = {"F_STR": "string", "F_INT": "integer", "F_BOOL": "boolean", "F_OBJ": "object", "F_STRARR": "array"}[row["type"]]
    want = {base} if row["required"] else {base, "null"}
    assert types_of(schema) == want, f"{where}.{name}: type {schema.get('type')} != {want}"
    strs = schema["items"] if row["type"] == "F_STRARR" else schema
    if row["type"] == "F_STRARR":
        assert schema.get("maxItems") == 64 and types_of(strs) == {"string"}, f"{where}.{name}"
    if row["type"] in ("F_STR", "F_STRARR"):
        assert strs.get("minLength", 0) == row["min"], f"{where}.{name}: minLength {strs.get('minLength')} != {row['min']}"
        assert strs.get("maxLength") == (row["max"] or None), f"{where}.{name}: maxLength {strs.get('maxLength')} != {row['max']}"
        assert sorted(strs.get("enum") or []) == sorted(row["oneof"] or []), f"{where}.{name}: enum"
    if row["type"] == "F_INT":
        assert (schema.get("minimum"), schema.get("maximum")) == (row["min"], row["max"]), f"{where}.{name}: bounds"


def test_request_bodies_follow_the_field_tables(doc):
    ops = operations(doc)
    checked = 0
    for (method, pattern), r in routes().items():
        if "R_JSON" not in r["flags"]:
            continue
        where = f"{method} {pattern}"
        rows = handler_fields(r["prep"]) if r["prep"] != "h_none" else None
        if rows is None:
            rows = handler_fields(r["run"])
        assert rows is not None, f"{where}: no qun_fields_check in {r['prep']} / {r['run']}"
        schema = ops[(method, pattern)]["requestBody"]["content"]["application/json"]["schema"]
        props = schema.get("properties", {})
        refused = REFUSED_MEMBERS.get((method, pattern), set())
        assert set(props) == set(rows) - refused, f"{where}: documented {sorted(props)} vs table {sorted(rows)}"
        required = sorted(n for n, row in rows.items() if row["required"] and n not in refused)
        assert sorted(schema.get("required", [])) == required, f"{where}: required"
        for name in props:
            check_field(where, name, rows[name], props[name])
        checked += 1
    assert checked >= 15


# ---- error codes ----

def mentioned_codes(doc, text):
    codes = set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)`", text))
    codes |= set(resolve(doc, doc["components"]["schemas"]["Problem"])["properties"]["code"]["enum"])
    for op in operations(doc).values():
        codes |= set(op.get("x-qun-errors", []))
        for s, resp in op["responses"].items():
            if s[0] in "45" and "$ref" in resp:
                codes |= set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*\b", resp["description"]))
    return codes


def test_every_documented_code_exists(doc):
    text = read("docs/openapi.yaml")
    known = errors_def()
    unknown = sorted(mentioned_codes(doc, text) - set(known))
    assert not unknown, f"docs/openapi.yaml names codes errors.def lacks: {unknown}"
    enum = resolve(doc, doc["components"]["schemas"]["Problem"])["properties"]["code"]["enum"]
    assert set(enum) == set(known) - {"OK"}, "Problem.code enum must list every code of errors.def"


def test_codes_sit_under_their_status(doc):
    known = errors_def()
    for (method, pattern), op in operations(doc).items():
        where = f"{method} {pattern}"
        listed = op["x-qun-errors"]
        for code in listed:
            assert str(known[code]) in op["responses"], f"{where}: {code} is {known[code]}, no such response"
            assert f"`{code}`" in op["description"], f"{where}: {code} not in the description"
        for s, resp in op["responses"].items():
            if s[0] in "45" and "$ref" in resp:
                named = re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\b[A-Z]{4,}\b", resp["description"])
                assert named, f"{where} {s}: no code named"
                for code in named:
                    assert known[code] == int(s) and code in listed, f"{where}: {code} under {s}"
        if (method, pattern) not in OUTSIDE_ROUTER:
            assert "METHOD_NOT_ALLOWED" in listed and "405" in op["responses"], where


# ---- against a running server ----

def concrete(pattern):
    return pattern.replace(":", "x")


def test_wrong_method_is_405(server, doc):
    ops = operations(doc)
    by_path = {}
    for method, pattern in ops:
        if (method, pattern) not in OUTSIDE_ROUTER:
            by_path.setdefault(pattern, set()).add(method)
    assert by_path
    for pattern, methods in sorted(by_path.items()):
        wrong = next(m for m in ("PUT", "PATCH", "DELETE", "POST", "GET") if m not in methods)
        r = requests.request(wrong, server.url + concrete(pattern), timeout=10)
        p = expect(r, 405, "METHOD_NOT_ALLOWED")
        assert p["type"] == "urn:qun:problem:METHOD_NOT_ALLOWED", p


def test_documented_path_with_its_method_is_routed(server, doc):
    """The other side of the 405: an undocumented path is 404, a documented one is not."""
    expect(requests.get(server.url + "/v1/no-such-route", timeout=10), 404, "NOT_FOUND")
    for (method, pattern) in operations(doc):
        if (method, pattern) in OUTSIDE_ROUTER or method != "GET" or pattern in ("/readyz",):
            continue
        r = requests.get(server.url + concrete(pattern), timeout=10)
        if r.status_code == 404:
            assert r.json()["code"] != "NOT_FOUND", f"GET {pattern} is not routed"
        assert r.status_code != 405, f"GET {pattern}"
