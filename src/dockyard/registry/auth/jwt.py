"""Compact JWS/JWT signing and verification, just what registry tokens need.

Registry tokens (Docker's token spec) are JWTs signed with an asymmetric key: RS256/384/512 for
RSA keys and ES256/384/512 for the matching NIST curves. There is no shared-secret (HS*) and no
``none`` algorithm here, on purpose: the registry only ever holds public keys.

How a verifier finds the signing key, in the order the CNCF registry tries them:

``x5c``  a certificate chain whose root is one of the trusted certificates;
``jwk``  the key itself, accepted only when it is one of the trusted keys;
``kid``  a key ID naming a trusted key. Two spellings are accepted: the libtrust fingerprint
         (distribution 2.x, Docker Hub) and the RFC 7638 JWK thumbprint (distribution 3.x).

Tokens this module signs carry the libtrust ``kid``, which both generations of the CNCF registry
understand.

Errors: every verification failure raises :class:`InvalidToken` (malformed, bad signature,
untrusted key, unsupported algorithm); the claims are checked by the caller, not here.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from dockyard.errors import InvalidArgument

__all__ = [
    "InvalidToken",
    "PublicKey",
    "SigningKey",
    "TrustStore",
    "b64url_decode",
    "b64url_encode",
    "generate_signing_key",
    "jwk_public_key",
    "jwk_thumbprint",
    "libtrust_key_id",
    "load_certificates",
    "load_signing_key",
    "sign",
    "verify",
]

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
# JWA: each ES algorithm is tied to one curve; the raw signature is r || s at the curve's size.
_EC_ALGS: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "ES256": (ec.SECP256R1, 32),
    "ES384": (ec.SECP384R1, 48),
    "ES512": (ec.SECP521R1, 66),
}
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_CURVES_BY_JWK_NAME: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}


class InvalidToken(Exception):
    """The token is malformed, signed by an untrusted key, or its signature does not verify."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    try:
        raw = text.encode("ascii")
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed base64url") from exc


def libtrust_key_id(key: PublicKey) -> str:
    """The libtrust fingerprint: SHA-256 of the DER public key, 240 bits, base32, 12 groups of 4."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii").rstrip("=")
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


def _int_b64(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(length, "big"))


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The key's required JWK members (RFC 7517), as RFC 7638 hashes them."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"e": _int_b64(numbers.e), "kty": "RSA", "n": _int_b64(numbers.n)}
    curve = _CURVE_NAMES.get(key.curve.name)
    if curve is None:
        raise InvalidArgument(f"unsupported elliptic curve {key.curve.name}")
    size = (key.curve.key_size + 7) // 8
    point = key.public_numbers()
    return {
        "crv": curve,
        "kty": "EC",
        "x": _int_b64(point.x, size),
        "y": _int_b64(point.y, size),
    }


def jwk_thumbprint(key: PublicKey) -> str:
    """RFC 7638 thumbprint (SHA-256), the ``kid`` distribution 3.x derives from certificates."""
    canonical = json.dumps(public_jwk(key), separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def jwk_public_key(jwk: Mapping[str, Any]) -> PublicKey:
    try:
        if jwk.get("kty") == "RSA":
            e = int.from_bytes(b64url_decode(str(jwk["e"])), "big")
            n = int.from_bytes(b64url_decode(str(jwk["n"])), "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
        if jwk.get("kty") == "EC":
            curve = _CURVES_BY_JWK_NAME[str(jwk["crv"])]
            x = int.from_bytes(b64url_decode(str(jwk["x"])), "big")
            y = int.from_bytes(b64url_decode(str(jwk["y"])), "big")
            return ec.EllipticCurvePublicNumbers(x, y, curve()).public_key()
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidToken("malformed jwk") from exc
    raise InvalidToken("unsupported jwk key type")


@dataclass(frozen=True)
class SigningKey:
    """A private key and the JWS header that names it."""

    private: PrivateKey
    alg: str
    kid: str

    @property
    def public(self) -> PublicKey:
        return self.private.public_key()


def _default_alg(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    for alg, (curve, _) in _EC_ALGS.items():
        if isinstance(key.curve, curve):
            return alg
    raise InvalidArgument(f"unsupported elliptic curve {key.curve.name} for token signing")


def _signing_key(private: PrivateKey) -> SigningKey:
    return SigningKey(private, _default_alg(private), libtrust_key_id(private.public_key()))


def load_signing_key(path: Path) -> SigningKey:
    """Read a PEM private key (RSA, or EC on P-256/384/521). Raises InvalidArgument."""
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidArgument(f"cannot load token signing key {path}: {exc}") from exc
    if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise InvalidArgument(f"token signing key {path} must be an RSA or EC key")
    return _signing_key(private)


def generate_signing_key(kind: str = "EC") -> SigningKey:
    """A fresh key: ``EC`` (P-256, ES256) or ``RSA`` (2048 bits, RS256)."""
    if kind == "RSA":
        return _signing_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _signing_key(ec.generate_private_key(ec.SECP256R1()))


def self_signed_certificate(
    key: SigningKey, common_name: str, days: int = 3650
) -> x509.Certificate:
    """A certificate for the key, for a ``rootcertbundle`` that other registries can trust."""
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key.private, hashes.SHA256())
    )


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every CERTIFICATE block of a PEM bundle. Raises InvalidArgument."""
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"cannot load certificate bundle {path}: {exc}") from exc


@dataclass
class TrustStore:
    """The keys and root certificates a verifier trusts, indexed by both kid spellings."""

    keys: dict[str, PublicKey] = field(default_factory=dict)
    roots: list[x509.Certificate] = field(default_factory=list)

    def add_key(self, key: PublicKey) -> None:
        self.keys[libtrust_key_id(key)] = key
        self.keys[jwk_thumbprint(key)] = key

    def add_certificates(self, certs: Iterable[x509.Certificate]) -> None:
        for cert in certs:
            key = cert.public_key()
            if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
                self.roots.append(cert)
                self.add_key(key)

    def trusts(self, key: PublicKey) -> bool:
        return libtrust_key_id(key) in self.keys

    def key_for_chain(self, chain: list[str]) -> PublicKey:
        """The leaf key of an ``x5c`` chain that ends at one of our roots."""
        try:
            certs = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in chain]
        except (ValueError, TypeError, binascii.Error) as exc:
            raise InvalidToken("malformed x5c certificate") from exc
        if not certs:
            raise InvalidToken("empty x5c chain")
        now = datetime.datetime.now(datetime.UTC)
        for cert in certs:
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise InvalidToken("x5c certificate outside its validity period")
        for index, cert in enumerate(certs):
            if cert in self.roots or any(_issued_by(cert, root) for root in self.roots):
                break
            if index + 1 == len(certs) or not _issued_by(cert, certs[index + 1]):
                raise InvalidToken("x5c chain does not lead to a trusted root")
        leaf = certs[0].public_key()
        if not isinstance(leaf, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise InvalidToken("unsupported x5c leaf key")
        return leaf


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _sign_bytes(key: SigningKey, data: bytes) -> bytes:
    hash_cls = _HASHES[key.alg[2:]]
    if isinstance(key.private, rsa.RSAPrivateKey):
        return key.private.sign(data, padding.PKCS1v15(), hash_cls())
    der = key.private.sign(data, ec.ECDSA(hash_cls()))
    r, s = decode_dss_signature(der)
    size = _EC_ALGS[key.alg][1]
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def sign(
    claims: Mapping[str, Any], key: SigningKey, *, header: Mapping[str, Any] | None = None
) -> str:
    """The compact serialization of a JWT with these claims; ``header`` replaces the default."""
    head = dict(header) if header is not None else {"typ": "JWT", "alg": key.alg, "kid": key.kid}
    signing_input = ".".join(
        b64url_encode(json.dumps(part, separators=(",", ":")).encode("utf-8"))
        for part in (head, claims)
    )
    signature = _sign_bytes(key, signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


def _verify_bytes(key: PublicKey, alg: str, data: bytes, signature: bytes) -> None:
    try:
        if alg.startswith("RS") and alg[2:] in _HASHES and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), _HASHES[alg[2:]]())
            return
        if alg in _EC_ALGS and isinstance(key, ec.EllipticCurvePublicKey):
            curve, size = _EC_ALGS[alg]
            if not isinstance(key.curve, curve) or len(signature) != 2 * size:
                raise InvalidToken(f"{alg} signature does not match the key")
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(_HASHES[alg[2:]]()))
            return
    except InvalidSignature as exc:
        raise InvalidToken("bad token signature") from exc
    raise InvalidToken(f"signing algorithm {alg!r} is not accepted for this key")


def _json_part(text: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(text))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidToken("malformed token json") from exc
    if not isinstance(value, dict):
        raise InvalidToken("token part is not a json object")
    return value


def verify(token: str, trust: TrustStore) -> dict[str, Any]:
    """Check the signature against the trust store and return the (unchecked) claims."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed token")
    header = _json_part(parts[0])
    claims = _json_part(parts[1])
    signature = b64url_decode(parts[2])
    alg = header.get("alg")
    if not isinstance(alg, str) or not signature:
        raise InvalidToken("token is not signed")
    if isinstance(header.get("x5c"), list):
        key = trust.key_for_chain([str(c) for c in header["x5c"]])
    elif isinstance(header.get("jwk"), dict):
        key = jwk_public_key(header["jwk"])
        if not trust.trusts(key):
            raise InvalidToken("token signed by an untrusted jwk")
    elif isinstance(header.get("kid"), str):
        found = trust.keys.get(header["kid"])
        if found is None:
            raise InvalidToken(f"token signed by untrusted key {header['kid']!r}")
        key = found
    else:
        raise InvalidToken("token names no signing key")
    _verify_bytes(key, alg, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)
    return claims
