"""Secrets in scanner output are masked before they become a finding or evidence.

The masking runs a rule's regex only when one of its trigger words is in the text (found for all
words in one Aho-Corasick pass). These tests check the kinds of secret a tester's output quotes,
and that the prefilter never spares a rule that would have matched: the result equals running every
rule on every text.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from security_checks.scan import secrets
from security_checks.scan.secrets import MASK, scrub


def _every_rule(text: str) -> str:
    """scrub without the prefilter: every rule's regex on every text."""
    lowered = text.lower() if text.isascii() else text.translate(secrets._LOWER)
    spans = sorted(m.span(group) for pattern, group, _ in secrets._RULES for m in pattern.finditer(lowered))
    out, pos = [], 0
    for start, end in spans:
        if end <= pos:
            continue
        out += [text[pos:max(start, pos)], MASK]
        pos = end
    return "".join(out) + text[pos:] if spans else text


CASES = {
    "It was possible to log in with: Username : admin  Password: Winter2024!": "Winter2024!",
    "SNMP community string = 'c0unc1l-ro'": "c0unc1l-ro",
    "GET / HTTP/1.1\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\n": "YWRtaW46YWRtaW4=",
    "Set-Cookie: SESSION=abc123; HttpOnly": "SESSION=abc123; HttpOnly",
    "Found ftp://backup:S3cret@10.10.30.20/ in the page": "S3cret",
    "Administrator:500:aad3b435b51404eeaad3b435b51404ee:31d6cfe0d16ae931b73c59d7e0c089c0:::":
        "31d6cfe0d16ae931b73c59d7e0c089c0",
    "root:$6$rounds=5000$saltsalt$Zx9hashhashhash:19000:0:99999:7:::": "$6$rounds=5000$saltsalt$Zx9hashhashhash",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----": "MIIEpAIBAAKCAQEA",
    "API_KEY=sk-live-0000 in /etc/app.env": "sk-live-0000",
    "Benutzer: Jürgen; PASSWORD: ÄÖÜ-geheim": "ÄÖÜ-geheim",   # not ASCII: the lowered copy keeps offsets
}


def test_each_kind_of_secret_is_masked_and_the_rest_kept() -> None:
    for text, secret in CASES.items():
        masked = scrub(text)
        assert secret not in masked and MASK in masked, text
        assert masked == _every_rule(text)
    plain = "Remote package installed : libexample_1.2.3-1~deb12u1\nShould be : libexample_1.2.3-1~deb12u2\n"
    assert scrub(plain) is plain    # nothing to mask: the text itself, not a copy


_PIECES = st.sampled_from(["password", "Passwd", "pwd", "secret", "TOKEN", "apikey", "api-key", "community",
                           "credential", "private key", "private_key", "authorization", "cookie", "set-cookie",
                           "bearer", "://", "@", ":::", "$1$", "$6$", "hash", "NTLM", "-----BEGIN", "-----END",
                           " ", "\t", "\n", ":", "=", "'", '"', "/", "a" * 32, "f" * 32, "abc", "S3cret", "ü",
                           "İ", "K"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_the_prefilter_never_spares_a_rule_that_matches(text: str) -> None:
    assert scrub(text) == _every_rule(text)
