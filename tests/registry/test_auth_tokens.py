"""JWT signing/verification, scopes, ACLs and htpasswd: the pure parts of registry auth."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.errors import InvalidArgument
from dockyard.registry.auth import jwt
from dockyard.registry.auth.htpasswd import Htpasswd, parse_htpasswd
from dockyard.registry.auth.scope import ACL, Scope, covers, parse_scope, parse_scopes
from dockyard.registry.auth.token import LEEWAY_SECONDS, access_claim, check_claims

pytestmark = pytest.mark.unit


def _trust(*keys: jwt.SigningKey) -> jwt.TrustStore:
    store = jwt.TrustStore()
    for key in keys:
        store.add_key(key.public)
    return store


@pytest.mark.parametrize("kind,alg", [("EC", "ES256"), ("RSA", "RS256")])
def test_sign_verify_round_trip(kind: str, alg: str) -> None:
    key = jwt.generate_signing_key(kind)
    token = jwt.sign({"iss": "me", "n": 1}, key)
    header = json.loads(jwt.b64url_decode(token.split(".")[0]))
    assert header == {"typ": "JWT", "alg": alg, "kid": key.kid}
    assert jwt.verify(token, _trust(key)) == {"iss": "me", "n": 1}


def test_libtrust_key_id_shape() -> None:
    kid = jwt.generate_signing_key().kid
    groups = kid.split(":")
    assert len(groups) == 12 and all(len(g) == 4 for g in groups)
    assert set(kid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567:")


def test_rfc7638_thumbprint_of_the_rfc_example() -> None:
    # RFC 7638 section 3.1: the example RSA key and its thumbprint.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qvz"
        "qY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
        "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    key = jwt.jwk_public_key({"kty": "RSA", "n": n, "e": "AQAB"})
    assert jwt.jwk_thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_verify_accepts_thumbprint_kid_and_trusted_jwk() -> None:
    key = jwt.generate_signing_key()
    trust = _trust(key)
    head = {"typ": "JWT", "alg": "ES256", "kid": jwt.jwk_thumbprint(key.public)}
    token = _resign(head, {"a": 1}, key)
    assert jwt.verify(token, trust) == {"a": 1}
    with_jwk = _resign({"typ": "JWT", "alg": "ES256", "jwk": jwt.public_jwk(key.public)}, {}, key)
    assert jwt.verify(with_jwk, trust) == {}
    with pytest.raises(jwt.InvalidToken, match="untrusted jwk"):
        jwt.verify(with_jwk, jwt.TrustStore())


def _resign(header: dict[str, object], claims: dict[str, object], key: jwt.SigningKey) -> str:
    return jwt.sign(claims, key, header=header)


def test_verify_x5c_chain_to_a_trusted_root() -> None:
    root_key = jwt.generate_signing_key()
    root_cert = jwt.self_signed_certificate(root_key, "root")
    trust = jwt.TrustStore()
    trust.add_certificates([root_cert])
    der = base64.b64encode(root_cert.public_bytes(serialization.Encoding.DER)).decode()
    token = _resign({"typ": "JWT", "alg": "ES256", "x5c": [der]}, {"ok": True}, root_key)
    assert jwt.verify(token, trust) == {"ok": True}
    other = jwt.generate_signing_key()
    other_cert = jwt.self_signed_certificate(other, "other")
    der2 = base64.b64encode(other_cert.public_bytes(serialization.Encoding.DER)).decode()
    bad = _resign({"typ": "JWT", "alg": "ES256", "x5c": [der2]}, {}, other)
    with pytest.raises(jwt.InvalidToken, match="trusted root"):
        jwt.verify(bad, trust)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t: t.rsplit(".", 1)[0] + ".", id="no-signature"),
        pytest.param(lambda t: t + "x", id="bad-signature"),
        pytest.param(lambda t: "a.b", id="two-parts"),
        pytest.param(lambda t: "!!!.e30.e30", id="bad-base64"),
        pytest.param(
            lambda t: jwt.b64url_encode(b'{"alg":"none","kid":"x"}') + "." + t.split(".", 1)[1],
            id="alg-none",
        ),
    ],
)
def test_verify_rejects_tampering(mutate: object) -> None:
    key = jwt.generate_signing_key()
    token = jwt.sign({"x": 1}, key)
    assert callable(mutate)
    with pytest.raises(jwt.InvalidToken):
        jwt.verify(mutate(token), _trust(key))


def test_verify_rejects_other_keys_and_swapped_claims() -> None:
    key, other = jwt.generate_signing_key(), jwt.generate_signing_key()
    token = jwt.sign({"access": []}, key)
    with pytest.raises(jwt.InvalidToken, match="untrusted key"):
        jwt.verify(token, _trust(other))
    forged_claims = jwt.b64url_encode(
        b'{"access":[{"type":"repository","name":"x","actions":["*"]}]}'
    )
    head, _, sig = token.split(".")
    with pytest.raises(jwt.InvalidToken, match="signature"):
        jwt.verify(f"{head}.{forged_claims}.{sig}", _trust(key))


def test_verify_rejects_rs_alg_on_an_ec_key() -> None:
    key = jwt.generate_signing_key("EC")
    head, claims, sig = jwt.sign({}, key).split(".")
    head = jwt.b64url_encode(json.dumps({"alg": "RS256", "kid": key.kid}).encode())
    with pytest.raises(jwt.InvalidToken):
        jwt.verify(f"{head}.{claims}.{sig}", _trust(key))


def test_key_and_certificate_files(tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    path = tmp_path / "k.pem"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key = jwt.load_signing_key(path)
    assert key.alg == "ES384"
    cert = jwt.self_signed_certificate(key, "x")
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM) * 2)
    assert len(jwt.load_certificates(tmp_path / "c.pem")) == 2
    with pytest.raises(InvalidArgument):
        jwt.load_signing_key(tmp_path / "missing.pem")
    assert isinstance(cert, x509.Certificate)


# -- claims ---------------------------------------------------------------------------------------

NOW = 1_800_000_000.0
GOOD = {"iss": "i", "aud": "svc", "exp": NOW + 300, "nbf": NOW, "iat": NOW}


@pytest.mark.parametrize(
    "change,ok",
    [
        ({}, True),
        ({"aud": ["other", "svc"]}, True),
        ({"iss": "x"}, False),
        ({"aud": "other"}, False),
        ({"aud": None}, False),
        ({"exp": NOW - LEEWAY_SECONDS - 1}, False),
        ({"exp": NOW - LEEWAY_SECONDS + 1}, True),
        ({"exp": "soon"}, False),
        ({"exp": None}, False),
        ({"nbf": NOW + LEEWAY_SECONDS + 1}, False),
        ({"nbf": NOW + LEEWAY_SECONDS - 1}, True),
    ],
)
def test_check_claims(change: dict[str, object], ok: bool) -> None:
    claims = {**GOOD, **change}
    if ok:
        check_claims(claims, issuer="i", audience="svc", now=NOW)
    else:
        with pytest.raises(jwt.InvalidToken):
            check_claims(claims, issuer="i", audience="svc", now=NOW)


def test_access_claim_parsing() -> None:
    claims = {
        "access": [
            {"type": "repository", "name": "a", "actions": ["pull"]},
            {"type": "repository", "name": "a", "actions": ["push"]},
        ]
    }
    assert access_claim(claims) == [Scope("repository", "a", frozenset({"pull", "push"}))]
    assert access_claim({}) == []
    for bad in ({"access": "x"}, {"access": [1]}, {"access": [{"type": 1, "name": "a"}]}):
        with pytest.raises(jwt.InvalidToken):
            access_claim(bad)


# -- scopes and ACLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("repository:foo:pull", Scope("repository", "foo", frozenset({"pull"}))),
        ("repository:a/b:pull,push", Scope("repository", "a/b", frozenset({"pull", "push"}))),
        ("registry:catalog:*", Scope("registry", "catalog", frozenset({"*"}))),
        (
            "repository:localhost:5000/x:pull",
            Scope("repository", "localhost:5000/x", frozenset({"pull"})),
        ),
        ("repository(plugin):p:pull", Scope("repository", "p", frozenset({"pull"}))),
        ("repository:foo:", Scope("repository", "foo", frozenset())),
    ],
)
def test_parse_scope(text: str, expected: Scope) -> None:
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    "text", ["foo", "repository:foo", ":foo:pull", "Repo:foo:pull", "repository:x:pu ll!"]
)
def test_parse_scope_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_scope(text)


def test_parse_scopes_merges_and_splits_on_spaces() -> None:
    got = parse_scopes(["repository:a:pull repository:b:push", "repository:a:push"])
    assert got == [
        Scope("repository", "a", frozenset({"pull", "push"})),
        Scope("repository", "b", frozenset({"push"})),
    ]


def test_covers_and_wildcard() -> None:
    granted = [
        Scope("repository", "a", frozenset({"*"})),
        Scope("repository", "b", frozenset({"pull"})),
    ]
    assert covers(granted, Scope("repository", "a", frozenset({"push", "delete"})))
    assert covers(granted, Scope("repository", "b", frozenset({"pull"})))
    assert not covers(granted, Scope("repository", "b", frozenset({"pull", "push"})))
    assert not covers(granted, Scope("repository", "c", frozenset({"pull"})))
    assert not covers(
        [Scope("registry", "catalog", frozenset({"pull"}))],
        Scope("registry", "catalog", frozenset({"*"})),
    )


ACL_RULES = ACL.parse(
    [
        {"account": "admin", "type": "*", "name": "*", "actions": ["*"]},
        {"account": "*", "name": "${account}/*", "actions": ["pull", "push", "delete"]},
        {"account": "", "name": "public/*", "actions": ["pull"]},
        {"name": "shared/*", "actions": "pull"},
    ]
)


@pytest.mark.parametrize(
    "account,scope,granted",
    [
        ("admin", "registry:catalog:*", {"*"}),
        ("admin", "repository:x/y:pull,push,delete", {"pull", "push", "delete"}),
        ("alice", "repository:alice/app:pull,push", {"pull", "push"}),
        ("alice", "repository:bob/app:pull,push", set()),
        ("alice", "repository:public/app:pull", set()),  # "" is anonymous only
        ("alice", "repository:shared/app:pull,push", {"pull"}),
        ("alice", "registry:catalog:*", set()),
        (None, "repository:public/app:pull,push", {"pull"}),
        (None, "repository:shared/app:pull", {"pull"}),
        (None, "repository:alice/app:pull", set()),
        ("a*", "repository:alice/app:pull", set()),  # ${account} is a literal, not a glob
    ],
)
def test_acl_grant(account: str | None, scope: str, granted: set[str]) -> None:
    result = ACL_RULES.grant(account, [parse_scope(scope)])
    assert (result[0].actions if result else set()) == granted


@pytest.mark.parametrize(
    "raw",
    [
        "not a list",
        [{"actions": ["pull"], "color": "red"}],
        [{"name": "x"}],
        [{"actions": ["PULL!"]}],
        [{"actions": ["pull"], "account": 3}],
        ["string"],
    ],
)
def test_acl_parse_rejects(raw: object) -> None:
    with pytest.raises(InvalidArgument):
        ACL.parse(raw)


# -- htpasswd -------------------------------------------------------------------------------------


def test_parse_htpasswd_keeps_bcrypt_only() -> None:
    text = "# users\n\nalice:$2y$05$abc\nbob:$apr1$xyz$abc\ncarol:{SHA}abc=\ndave:$2b$05$d\n"
    assert parse_htpasswd(text) == {"alice": b"$2y$05$abc", "dave": b"$2b$05$d"}
    with pytest.raises(InvalidArgument):
        parse_htpasswd("no-colon-here\n")


def test_htpasswd_check_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)
    path.write_text(f"alice:{hashed}\n")
    users = Htpasswd(path)

    async def run() -> None:
        assert await users.check("alice", "secret")
        assert await users.check("alice", "secret")  # cached
        assert not await users.check("alice", "wrong")
        assert not await users.check("nobody", "secret")
        assert "alice" in users and "bob" not in users
        # A rewritten file is picked up (checked at most once a second).
        other = bcrypt.hashpw(b"new", bcrypt.gensalt(4)).decode()
        path.write_text(f"bob:{other}\n")
        users._checked_at = 0.0
        assert not await users.check("alice", "secret")
        assert await users.check("bob", "new")

    asyncio.run(run())
    with pytest.raises(InvalidArgument):
        Htpasswd(tmp_path / "missing")


def test_htpasswd_long_passwords_are_truncated_like_htpasswd(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"x" * 72, bcrypt.gensalt(4)).decode()
    path.write_text(f"u:{hashed}\n")
    users = Htpasswd(path)
    assert asyncio.run(users.check("u", "x" * 100))
