"""`checkout.gateways.rsa`: what it signs verifies, and nothing else does."""

from checkout.gateways import rsa
from tests.fakes import key_pair


def test_a_signature_verifies_with_the_matching_key_only():
    private, public = key_pair()
    _, other = key_pair()
    signature = rsa.sign(rsa.private_key(private), b"message")
    assert rsa.verifies(rsa.public_key(public), b"message", signature)
    assert not rsa.verifies(rsa.public_key(public), b"messagE", signature)
    assert not rsa.verifies(rsa.public_key(other), b"message", signature)


def test_a_malformed_signature_is_refused_not_raised():
    _, public = key_pair()
    for signature in ("", "not base64!", "AAAA", "\N{SUPERSCRIPT TWO}"):
        assert not rsa.verifies(rsa.public_key(public), b"message", signature)
